"""``python -m services.projections``: the projection service with /health, /ready, /metrics.

``/health`` answers as soon as the process runs; ``/ready`` answers 200 only while NATS and
the read-model store both answer within a second, with the watermark and the number of dead
letters waiting in its body. If NATS or the read store cannot be reached at start, or the
streams do not exist yet (the relay creates them), the service waits for them (logging that
once, and saying so in ``/ready``) instead of exiting; SIGTERM ends any of these waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
import structlog
from nats.aio.client import Client

from services.projections.service import ProjectionService
from services.projections.settings import ProjectionServiceSettings
from services.settings import start
from shared.http.operations import NotReady, operations_server
from shared.messaging import NO_USER, NoNatsUser, connect_or_stop, wait_for_streams
from shared.readmodels.store import ReadStore, open_read_store

SERVICE = "projections"
log = structlog.get_logger(__name__)
T = TypeVar("T")


async def _until_done(
    what: str, attempt: Callable[[], Awaitable[T]], stopping: asyncio.Event
) -> T | None:
    """``attempt()`` until it succeeds (None if the service is stopped first), logging the
    first failure and the success after it, and waiting longer between tries up to 5 s."""
    failures = 0
    while not stopping.is_set():
        try:
            result = await attempt()
        except Exception as error:  # whatever keeps it from starting: wait, say so once, retry
            failures += 1
            if failures == 1:
                log.warning(
                    "projections.waiting_for",
                    dependency=what,
                    error=f"{type(error).__name__}: {error}",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(5.0, 0.2 * 2 ** min(failures, 10)))
            continue
        if failures:
            log.info("projections.reached", dependency=what, attempts=failures + 1)
        return result
    return None


async def main(settings: ProjectionServiceSettings) -> None:
    stopping = asyncio.Event()
    running: dict[str, Any] = {}
    waiting = {"reason": "waiting for the read-model store"}

    async def ready() -> dict[str, Any]:
        service: ProjectionService | None = running.get("service")
        if service is None:
            raise NotReady(waiting["reason"])
        return await service.readiness()

    server = operations_server(
        SERVICE,
        ready,
        host=settings.host,
        port=settings.port,
        timeout=settings.readiness.timeout_seconds,
    )

    def shutdown() -> None:
        stopping.set()
        if "service" in running:
            running["service"].stop()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    serving = asyncio.create_task(server.serve())
    store: ReadStore | None = None
    nc: Client | None = None
    try:
        store = await _until_done(
            "read_store",
            lambda: anyio.to_thread.run_sync(open_read_store, settings.read_store),
            stopping,
        )
        waiting["reason"] = "waiting for NATS"
        try:  # as long as NATS is away (logged once), or until SIGTERM
            if store is not None:
                nc = await connect_or_stop(stopping, settings.nats, name="tutorpulse-projections")
        except NoNatsUser:  # logged by connect; nothing will change until it is restarted
            waiting["reason"] = NO_USER
        if nc is not None:
            # The relay creates the streams; this user may only read their info.
            waiting["reason"] = "waiting for the relay to create the streams"
            await wait_for_streams(nc.jetstream(), stopping)
        if store is not None and nc is not None and not stopping.is_set():
            running["service"] = service = ProjectionService(store, nc, settings.projection)
            await service.run()
        await serving
    finally:
        if not serving.done():
            server.should_exit = True
            await serving
        if nc is not None:
            # close(), not drain(): draining a pull subscription waits for fetches that never come.
            try:
                await nc.flush(timeout=2)
            except Exception as error:  # NATS is away: nothing more can be sent anyway
                log.debug("projections.flush_failed", error=str(error))
            await nc.close()
        if store is not None:
            store.close()
        log.info("projections.stopped")


if __name__ == "__main__":
    asyncio.run(main(start(ProjectionServiceSettings, SERVICE)))
