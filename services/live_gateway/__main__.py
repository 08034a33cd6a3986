"""``python -m services.live_gateway``: serve the websocket gateway with uvicorn."""

from __future__ import annotations

import asyncio
import os

import uvicorn

from services.live_gateway.app import app_from_environment


async def main() -> None:
    app = await app_from_environment()
    config = uvicorn.Config(app, host=os.environ.get("TUTORPULSE_GATEWAY_HOST", "127.0.0.1"),
                            port=int(os.environ.get("TUTORPULSE_GATEWAY_PORT", "8013")),
                            log_config=None, access_log=False, ws_ping_interval=None)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
