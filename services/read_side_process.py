"""The life of a process that consumes the streams into the read-model store (the projection
service, the notifier): /health at once, /ready saying what it waits for, then the service.

While the read-model store or NATS cannot be reached at start, or the streams do not exist yet
(the relay creates them), the process waits for them (logging that once, and saying so in
``/ready``) instead of exiting; SIGTERM or SIGINT ends any of these waits and the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import anyio.to_thread
import structlog
from nats.aio.client import Client

from shared.http.operations import NotReady, describe, operations_server
from shared.http.settings import ReadinessSettings
from shared.messaging import NO_USER, NoNatsUser, connect_or_stop, wait_for_streams
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM
from shared.messaging.settings import NatsSettings
from shared.readmodels.store import ReadStore, open_read_store
from shared.readmodels.store.settings import ReadStoreSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Consumer(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...

    async def readiness(self) -> dict[str, Any]: ...


class ProcessSettings(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def readiness(self) -> ReadinessSettings: ...

    @property
    def read_store(self) -> ReadStoreSettings: ...

    @property
    def nats(self) -> NatsSettings: ...


async def until_done(
    service: str, what: str, attempt: Callable[[], Awaitable[T]], stopping: asyncio.Event
) -> T | None:
    """``attempt()`` until it succeeds (None if the process is stopped first), logging the
    first failure and the success after it, and waiting longer between tries up to 5 s."""
    failures = 0
    while not stopping.is_set():
        try:
            result = await attempt()
        except Exception as error:  # whatever keeps it from starting: wait, say so once, retry
            failures += 1
            if failures == 1:
                log.warning(f"{service}.waiting_for", dependency=what, error=describe(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(5.0, 0.2 * 2 ** min(failures, 10)))
            continue
        if failures:
            log.info(f"{service}.reached", dependency=what, attempts=failures + 1)
        return result
    return None


async def run_read_side_process(
    service: str,
    settings: ProcessSettings,
    consumer: Callable[[ReadStore, Client], Consumer],
    *,
    streams: tuple[str, ...] = (EVENTS_STREAM, DLQ_STREAM),
) -> None:
    """Serve /health, /ready and /metrics for ``service``; once the read-model store, NATS and
    ``streams`` are there, run the
    ``consumer`` made of them until a signal stops it."""
    stopping = asyncio.Event()
    running: dict[str, Consumer] = {}
    waiting = {"reason": "waiting for the read-model store"}

    async def ready() -> dict[str, Any]:
        current = running.get("service")
        if current is None:
            raise NotReady(waiting["reason"])
        return await current.readiness()

    server = operations_server(
        service,
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
        store = await until_done(
            service,
            "read_store",
            lambda: anyio.to_thread.run_sync(open_read_store, settings.read_store),
            stopping,
        )
        waiting["reason"] = "waiting for NATS"
        try:  # as long as NATS is away (logged once), or until SIGTERM
            if store is not None:
                nc = await connect_or_stop(stopping, settings.nats, name=f"tutorpulse-{service}")
        except NoNatsUser:  # logged by connect; nothing will change until it is restarted
            waiting["reason"] = NO_USER
        if nc is not None:
            # The relay creates the streams; these users may only read their info.
            waiting["reason"] = "waiting for the relay to create the streams"
            await wait_for_streams(nc.jetstream(), stopping, names=streams)
        if store is not None and nc is not None and not stopping.is_set():
            running["service"] = started = consumer(store, nc)
            log.info(f"{service}.started")
            await started.run()
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
                log.debug(f"{service}.flush_failed", error=str(error))
            await nc.close()
        if store is not None:
            store.close()
        log.info(f"{service}.stopped")
