"""``python -m services.live_gateway``: serve the websocket gateway with uvicorn."""

from __future__ import annotations

import uvicorn

from services.live_gateway.settings import GatewaySettings
from services.settings import load_or_exit

CLIENT_MESSAGE_LIMIT = 64 * 1024
"""Bytes in one client frame: subscribe, unsubscribe and ping are a few dozen."""


def main() -> None:
    settings = load_or_exit(GatewaySettings, "live_gateway")
    uvicorn.run(
        "services.live_gateway.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws_ping_interval=None,  # the gateway pings in its own protocol (docs/live.md)
        ws_max_size=CLIENT_MESSAGE_LIMIT,
    )


if __name__ == "__main__":
    main()
