"""``python -m services.relay``: run the relay with its /health, /ready and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread
import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from services.relay.lease import FileLease, Lease, PostgresLease
from services.relay.relay import Relay, RelaySettings
from shared.eventstore import EventStore
from shared.eventstore.store import STORE_NAME, postgres_conninfo
from shared.http.operations import Details, NatsPing, NotReady, operations_server
from shared.messaging import NO_USER, NoNatsUser, connect_or_stop, ensure_streams
from shared.observability import configure_logging

SERVICE = "relay"
NATS_PING_SECONDS = 0.5
"""How long /ready waits for NATS to answer a ping (a frozen server is not 'connected')."""
log = structlog.get_logger(__name__)


def lease_for(store: EventStore) -> Lease:
    env = store.env
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite":
        return PostgresLease(postgres_conninfo(env), f"{STORE_NAME}:relay")
    return FileLease(Path(f"{env['SQLITE_DBNAME']}.relay.lock"))


def settings_from_environment(environ: Mapping[str, str] | None = None) -> RelaySettings:
    source = os.environ if environ is None else environ
    defaults = RelaySettings()

    def number(name: str, default: float) -> float:
        return float(source.get(f"TUTORPULSE_RELAY_{name}", str(default)))

    return RelaySettings(
        batch_size=int(source.get("TUTORPULSE_RELAY_BATCH_SIZE", str(defaults.batch_size))),
        ack_timeout=number("ACK_TIMEOUT_SECONDS", defaults.ack_timeout),
        stall_seconds=number("STALL_SECONDS", defaults.stall_seconds),
        handover_seconds=number("HANDOVER_SECONDS", defaults.handover_seconds))


async def main() -> None:
    """Serve ``/health`` and ``/ready`` at once, then connect to NATS (as long as it takes, or
    until SIGTERM), set up the streams and relay; ``/ready`` says what it is waiting for."""
    configure_logging(SERVICE)
    settings = settings_from_environment()
    store = EventStore()
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
            raise NotReady(f"NATS does not answer a ping within {NATS_PING_SECONDS} s",
                           status.details())
        if status.problem is not None:
            raise NotReady(status.problem, status.details())
        await anyio.to_thread.run_sync(store.recorder.max_notification_id)
        return status.details()

    server = operations_server(
        SERVICE, ready, host=os.environ.get("TUTORPULSE_RELAY_HOST", "127.0.0.1"),
        port=int(os.environ.get("TUTORPULSE_RELAY_PORT", "8011")))

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
            nc = await connect_or_stop(stopping, name="tutorpulse-relay")
        except NoNatsUser:  # logged by connect; nothing will change until it is restarted
            waiting["reason"] = NO_USER
        if nc is not None:
            js = nc.jetstream(publish_async_max_pending=5000)
            waiting["reason"] = "setting up the streams"
            await _until_set_up(js, stopping)
            if not stopping.is_set():
                ping.append(NatsPing(nc))
                running["relay"] = relay = Relay(store, tracking, js, lease_for(store), settings,
                                                 nc=nc)
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


async def _until_set_up(js: JetStreamContext, stopping: asyncio.Event) -> None:
    """``ensure_streams`` until it works (NATS may go away meanwhile), or the relay stops."""
    delay = 0.2
    failed = False
    while not stopping.is_set():
        try:
            await ensure_streams(js)
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
    asyncio.run(main())
