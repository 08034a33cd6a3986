"""``python -m services.live_gateway``: serve the websocket gateway with uvicorn."""

from __future__ import annotations

import gc

import uvicorn

from services.live_gateway.settings import GatewaySettings
from services.settings import load_or_exit

CLIENT_MESSAGE_LIMIT = 64 * 1024
"""Bytes in one client frame: subscribe, unsubscribe and ping are a few dozen."""
GC_THRESHOLDS = (100_000, 50, 1000)
"""The cyclic garbage collector runs far less often than Python's default (700, 10, 10): the
gateway allocates a view's dicts per delivery, and with thousands of connections each full
collection walks every object they keep, pausing every socket at once. At 1,000 clients and
2,000 deliveries/s this took the p99 from about 450 ms to 40-110 ms (docs/benchmarks.md)."""


def main() -> None:
    settings = load_or_exit(GatewaySettings, "live_gateway")
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what the imports made lives as long as the process: never scan it again
    uvicorn.run(
        "services.live_gateway.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws_ping_interval=None,  # the gateway pings in its own protocol (docs/live.md)
        ws_max_size=CLIENT_MESSAGE_LIMIT,
        ws_per_message_deflate=settings.compression,
    )


if __name__ == "__main__":
    main()
