"""``python -m shared.messaging.server_config``: print the nats-server authorization block for a
deployment (``infra/nats/users.conf``), passwords read from the server's environment."""

from __future__ import annotations

from shared.messaging.auth import deployment_template


def main() -> None:
    print(deployment_template(), end="")


if __name__ == "__main__":
    main()
