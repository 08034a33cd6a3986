"""``python -m services.relay``: run the relay with its /health, /ready and /metrics.

The relay runs on uvloop's event loop: at ordinary rates it publishes a batch of one or two
events per commit, and most of its CPU is the event loop's own work around each batch (the
wake-up, the reads and records on its PostgreSQL connection, the publish and its acks). With
asyncio's selector loop the relay spent 0.98-1.01 ms of CPU per batch at 200 commands/s, with
uvloop 0.83-0.87 (three alternating runs each, a shared machine)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from pathlib import Path

import structlog
import uvloop
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from services.relay.lease import FileLease, Lease, PostgresLease
from services.relay.relay import Relay
from services.relay.settings import RelayServiceSettings
from services.settings import start
from shared.eventstore import EventStore
from shared.eventstore.store import STORE_NAME, postgres_conninfo
from shared.http.operations import Details, NatsPing, NotReady, operations_server
from shared.messaging import NO_USER, NoNatsUser, StreamSettings, connect_or_stop, ensure_streams

SERVICE = "relay"
NATS_PING_SECONDS = 0.5
"""How long /ready waits for NATS to answer a ping (a frozen server is not 'connected')."""
log = structlog.get_logger(__name__)
GC_THRESHOLDS = (20_000, 20, 20)
"""The cyclic garbage collector's thresholds in the relay, as in the projection service and the
gateway. Each batch allocates futures, tasks, messages and rows; with CPython's defaults (a
collection of the youngest every 700 allocations, of the older ones every ten of those) and
nothing frozen, the collector's functions were about 8 % of the relay's perf samples at 200
commands/s, under 1 % with these (alternating runs showed no change of the CPU per batch beyond
their noise, about 3 %). Reference counting still frees at once whatever is not in a cycle."""


def lease_for(store: EventStore) -> Lease:
    env = store.env
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite":
        return PostgresLease(postgres_conninfo(env), f"{STORE_NAME}:relay")
    return FileLease(Path(f"{env['SQLITE_DBNAME']}.relay.lock"))


async def main(settings: RelayServiceSettings) -> None:
    """Serve ``/health`` and ``/ready`` at once, then connect to NATS (as long as it takes, or
    until SIGTERM), set up the streams and relay; ``/ready`` says what it is waiting for."""
    store = EventStore(settings.event_store)
    tracking = store.tracking()
    stopping = asyncio.Event()
    waiting = {"reason": "waiting for NATS"}
    running: dict[str, Relay] = {}
    ping: list[NatsPing] = []

    async def ready() -> Details:
        relay = running.get("relay")
        if relay is None:
            raise NotReady(waiting["reason"])
        status = relay.status()
        if status.problem is None and not await ping[0].answers(NATS_PING_SECONDS):
            raise NotReady(
                f"NATS does not answer a ping within {NATS_PING_SECONDS} s", status.details()
            )
        if status.problem is not None:
            raise NotReady(status.problem, status.details())
        # The store is not probed here: the relay's own calls on it, each bounded by
        # TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS and made at least every second, say whether it
        # answers (a probe through the store's pool would wait on a frozen server for ever).
        return status.details()

    server = operations_server(
        SERVICE,
        ready,
        host=settings.host,
        port=settings.port,
        timeout=settings.readiness.timeout_seconds,
    )

    def shutdown() -> None:
        log.info("relay.stopping")
        stopping.set()
        if "relay" in running:
            running["relay"].stop()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    serving = asyncio.create_task(server.serve())
    nc: Client | None = None
    try:
        try:
            nc = await connect_or_stop(stopping, settings.nats, name="tutorpulse-relay")
        except NoNatsUser:  # logged by connect; nothing will change until it is restarted
            waiting["reason"] = NO_USER
        if nc is not None:
            js = nc.jetstream()
            waiting["reason"] = "setting up the streams"
            await _until_set_up(js, settings.streams, stopping)
            if not stopping.is_set():
                ping.append(NatsPing(nc))
                running["relay"] = relay = Relay(
                    store, tracking, js, lease_for(store), settings.relay, nc=nc
                )
                # What the start-up made lives as long as the process: never scan it again.
                gc.collect()
                gc.freeze()
                await relay.run()
        await serving
    finally:
        if not serving.done():
            server.should_exit = True
            await serving
        if nc is not None:
            try:
                await nc.drain()
            except (NatsError, TimeoutError, OSError) as error:  # NATS is away: nothing to send
                log.debug("relay.drain_failed", error=str(error))
                await nc.close()
        store.close()
        log.info("relay.stopped")


async def _until_set_up(
    js: JetStreamContext, streams: StreamSettings, stopping: asyncio.Event
) -> None:
    """``ensure_streams`` until it works (NATS may go away meanwhile), or the relay stops."""
    delay = 0.2
    failed = False
    while not stopping.is_set():
        try:
            await ensure_streams(js, streams)
        except (NatsError, TimeoutError) as error:
            if not failed:
                failed = True
                log.warning("relay.streams_not_set_up", error=f"{type(error).__name__}: {error}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(5.0, delay * 2)
            continue
        return


if __name__ == "__main__":
    gc.set_threshold(*GC_THRESHOLDS)
    uvloop.run(main(start(RelayServiceSettings, SERVICE)))
