"""``python -m services.live_gateway``: serve the websocket gateway with uvicorn."""

from __future__ import annotations

import os

import uvicorn

CLIENT_MESSAGE_LIMIT = 64 * 1024
"""Bytes in one client frame: subscribe, unsubscribe and ping are a few dozen."""


def main() -> None:
    uvicorn.run(
        "services.live_gateway.app:app_from_environment",
        factory=True,
        host=os.environ.get("TUTORPULSE_GATEWAY_HOST", "127.0.0.1"),
        port=int(os.environ.get("TUTORPULSE_GATEWAY_PORT", "8013")),
        log_config=None,
        access_log=False,
        ws_ping_interval=None,  # the gateway pings in its own protocol (docs/live.md)
        ws_max_size=CLIENT_MESSAGE_LIMIT,
    )


if __name__ == "__main__":
    main()
