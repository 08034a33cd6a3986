"""``python -m services.notifier``: the notifier with /health, /ready, /metrics (port 8016).

``/ready`` is 200 while NATS answers a ping and the read store answers; while NATS or the read
store cannot be reached at start, or the streams do not exist yet (the relay creates them), it
is 503 and says what it waits for. SIGTERM stops it (messages it has not acknowledged go to
another replica after their ack wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import anyio.to_thread
import structlog
from nats.aio.client import Client

from services.notifier.service import NotifierService
from services.notifier.settings import NotifierServiceSettings
from services.settings import start
from shared.http.operations import NotReady, describe, operations_server
from shared.messaging import NO_USER, NoNatsUser, connect_or_stop, wait_for_streams
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFY_STREAM
from shared.readmodels.store import ReadStore, open_read_store

SERVICE = "notifier"
log = structlog.get_logger(__name__)


async def _open_store(
    settings: NotifierServiceSettings, stopping: asyncio.Event
) -> ReadStore | None:
    failures = 0
    while not stopping.is_set():
        try:
            return await anyio.to_thread.run_sync(open_read_store, settings.read_store)
        except Exception as error:  # wait for it, say so once
            failures += 1
            if failures == 1:
                log.warning("notifier.waiting_for", dependency="read_store", error=describe(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(5.0, 0.2 * 2 ** min(failures, 10)))
    return None


async def main(settings: NotifierServiceSettings) -> None:
    stopping = asyncio.Event()
    running: dict[str, NotifierService] = {}
    waiting = {"reason": "waiting for the read-model store"}

    async def ready() -> dict[str, Any]:
        service = running.get("service")
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
        store = await _open_store(settings, stopping)
        waiting["reason"] = "waiting for NATS"
        try:
            if store is not None:
                nc = await connect_or_stop(stopping, settings.nats, name="tutorpulse-notifier")
        except NoNatsUser:  # logged by connect; nothing changes until it is restarted
            waiting["reason"] = NO_USER
        if nc is not None:
            waiting["reason"] = "waiting for the relay to create the streams"
            await wait_for_streams(
                nc.jetstream(), stopping, names=(EVENTS_STREAM, DLQ_STREAM, NOTIFY_STREAM)
            )
        if store is not None and nc is not None and not stopping.is_set():
            running["service"] = service = NotifierService(store, nc, settings.delivery)
            log.info("notifier.started")
            await service.run()
        await serving
    finally:
        if not serving.done():
            server.should_exit = True
            await serving
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            await nc.close()
        if store is not None:
            store.close()
        log.info("notifier.stopped")


if __name__ == "__main__":
    asyncio.run(main(start(NotifierServiceSettings, SERVICE)))
