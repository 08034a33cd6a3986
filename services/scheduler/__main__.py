"""``python -m services.scheduler``: the scheduler with ``/health``, ``/ready``, ``/metrics`` and
its AsyncAPI document (``/asyncapi.json``, FastStream's, of what it consumes and publishes).

``/health`` answers as soon as the process runs. The scheduler then connects to NATS (as long
as it takes), waits for the streams (the relay creates them) and starts its two consumers;
``/ready`` is 503 meanwhile and says what it waits for, and 200 once the consumers run while
NATS answers a ping and the event store and its key table answer. The events its timers
record seal their personal texts with the key store beside the events, as the command
service's do (:func:`open_centres`); without a master key outside development mode it does not
start (``privacy.misconfigured``). SIGTERM stops it at any point: the consumers
finish the message in hand (FastStream's graceful stop) and nothing is acknowledged half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import anyio.to_thread
import msgspec
import structlog
import uvicorn
from faststream.specification import AsyncAPI
from litestar import Litestar, Response, get

from services.command.application import TutoringCentres
from services.command.privacy import PersonalData
from services.scheduler.clock import clock_from
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from services.scheduler.timers import Timer
from services.settings import start
from shared.http.operations import Details, NatsPing, NotReady, operations_router, prometheus
from shared.http.problems import BASE_HANDLERS
from shared.messaging import NO_USER

SERVICE = "scheduler"
NATS_PING_SECONDS = 0.5
log = structlog.get_logger(__name__)


def asyncapi_document(scheduler: Scheduler) -> dict[str, Any]:
    """FastStream's AsyncAPI 3.0 document of the scheduler's consumers and publisher."""
    specification = AsyncAPI(
        scheduler.broker,
        title="tutorpulse scheduler",
        version="1.0.0",
        description="Timers derived from tutorpulse events, kept as JetStream message "
        "schedules and fired as commands (docs/scheduler.md).",
    )
    document: dict[str, Any] = specification.to_specification().to_jsonable()
    # FastStream derives payloads from handler signatures (pydantic); ours are msgspec types.
    (timer,), schemas = msgspec.json.schema_components(
        [Timer], ref_template="#/components/schemas/{name}"
    )
    components = document.setdefault("components", {})
    components["schemas"] = schemas  # FastStream's are empty: no handler takes a body
    event = {
        "description": "A tutorpulse event as the relay publishes it (docs/events.md; the live "
        "gateway's /asyncapi.json has the schema of each type)",
        "type": "object",
        "required": ["type", "centreId", "aggregateId"],
    }
    for name, message in components.get("messages", {}).items():
        message["payload"] = event if name.startswith("scheduler.events") else timer
    return document


def open_centres(settings: SchedulerSettings) -> TutoringCentres:
    """The event store the timers' commands are recorded in, with the key store beside it that
    seals their events' personal texts (closed with the store). Opened in that order, so a
    scheduler started before the migration names the events' missing table first."""
    centres = TutoringCentres(settings.event_store)
    try:
        centres.protect(
            PersonalData.open(
                settings.event_store, settings.privacy, dev_mode=settings.dev_mode, service=SERVICE
            )
        )
    except BaseException:
        centres.close()
        raise
    return centres


def build_server(
    scheduler: Scheduler, settings: SchedulerSettings, waiting: dict[str, str]
) -> uvicorn.Server:
    """The scheduler's HTTP server; its ``centres`` must seal (:func:`open_centres`)."""
    privacy = scheduler.centres.privacy
    if privacy is None:
        raise ValueError("the scheduler records events: give its centres a key store")
    ping: list[NatsPing] = []

    async def ready() -> Details:
        if waiting["reason"]:
            raise NotReady(waiting["reason"], scheduler.tally.details())
        if not ping:
            ping.append(NatsPing(scheduler.broker.connection))
        if not await ping[0].answers(NATS_PING_SECONDS):
            raise NotReady(
                f"NATS does not answer a ping within {NATS_PING_SECONDS} s",
                scheduler.tally.details(),
            )
        await anyio.to_thread.run_sync(scheduler.centres.recorder.max_notification_id)
        await anyio.to_thread.run_sync(privacy.ready)
        return scheduler.tally.details()

    document = asyncapi_document(scheduler)

    @get("/asyncapi.json", include_in_schema=False, sync_to_thread=False)
    def asyncapi() -> Response[dict[str, Any]]:
        return Response(document, media_type="application/json")

    app = Litestar(
        route_handlers=[
            operations_router(SERVICE, ready, timeout=settings.readiness.timeout_seconds),
            asyncapi,
        ],
        middleware=[prometheus(SERVICE).middleware],
        exception_handlers=BASE_HANDLERS,
        logging_config=None,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


async def main(settings: SchedulerSettings) -> None:
    centres = open_centres(settings)
    scheduler = Scheduler(settings, centres, clock_from(settings.clock))
    waiting = {"reason": "waiting for NATS"}
    stopping = asyncio.Event()
    server = build_server(scheduler, settings, waiting)

    def shutdown() -> None:
        log.info("scheduler.stopping")
        stopping.set()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    serving = asyncio.create_task(server.serve())
    started = False
    try:
        if scheduler.user is None:
            log.error("nats.no_user", name="tutorpulse-scheduler", hint="set TUTORPULSE_NATS_USER")
            waiting["reason"] = NO_USER
        else:
            started = await _start(scheduler, stopping, waiting)
        if started:
            waiting["reason"] = ""
            log.info("scheduler.started", port=settings.port)
        await serving
    finally:
        if not serving.done():
            server.should_exit = True
            await serving
        with contextlib.suppress(Exception):
            await scheduler.stop()
        centres.close()
        log.info("scheduler.stopped")


async def _start(scheduler: Scheduler, stopping: asyncio.Event, waiting: dict[str, str]) -> bool:
    """Connect, wait for the streams, start the consumers; False if stopped first."""
    connecting = asyncio.ensure_future(scheduler.connect())
    stopped = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({connecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        return False
    connecting.result()
    waiting["reason"] = "waiting for the streams TP_EVENTS, TP_TIMERS and TP_DLQ"
    if not await scheduler.wait_for_streams(stopping):
        return False
    waiting["reason"] = "starting its consumers"
    await scheduler.start()
    return True


if __name__ == "__main__":
    asyncio.run(main(start(SchedulerSettings, SERVICE)))
