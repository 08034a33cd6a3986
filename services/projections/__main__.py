"""``python -m services.projections``: the projection service with /health, /ready, /metrics."""

from __future__ import annotations

import asyncio
import os
import signal

import anyio.to_thread
import structlog

from services.projections.service import ProjectionService
from services.projections.store import open_read_store
from shared.http.operations import operations_server
from shared.messaging import connect, ensure_streams
from shared.observability import configure_logging

SERVICE = "projections"
log = structlog.get_logger(__name__)


async def main() -> None:
    configure_logging(SERVICE)
    store = open_read_store()
    nc = await connect(name="tutorpulse-projections")
    await ensure_streams(nc.jetstream())
    service = ProjectionService(store, nc)

    async def ready() -> None:
        if not nc.is_connected:
            raise ConnectionError("NATS is not connected")
        await anyio.to_thread.run_sync(store.watermark)

    server = operations_server(
        SERVICE, ready, host=os.environ.get("TUTORPULSE_PROJECTIONS_HOST", "127.0.0.1"),
        port=int(os.environ.get("TUTORPULSE_PROJECTIONS_PORT", "8012")))

    def shutdown() -> None:
        service.stop()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    try:
        await asyncio.gather(service.run(), server.serve())
    finally:
        # close(), not drain(): draining a pull subscription waits for fetches that never come.
        await nc.flush()
        await nc.close()
        store.close()
        log.info("projections.stopped")


if __name__ == "__main__":
    asyncio.run(main())
