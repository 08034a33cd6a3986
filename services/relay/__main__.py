"""``python -m services.relay``: run the relay with its /health, /ready and /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread
import structlog

from services.relay.lease import FileLease, Lease, PostgresLease
from services.relay.relay import Relay, RelaySettings
from shared.eventstore import EventStore
from shared.eventstore.store import STORE_NAME, postgres_conninfo
from shared.http.operations import Details, NatsPing, NotReady, operations_server
from shared.messaging import connect, ensure_streams
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
    configure_logging(SERVICE)
    settings = settings_from_environment()
    store = EventStore()
    tracking = store.tracking()
    nc = await connect(name="tutorpulse-relay")
    js = nc.jetstream(publish_async_max_pending=5000)
    await ensure_streams(js)
    relay = Relay(store, tracking, js, lease_for(store), settings, nc=nc)

    ping = NatsPing(nc)

    async def ready() -> Details:
        status = relay.status()
        if status.problem is None and not await ping.answers(NATS_PING_SECONDS):
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
        relay.stop()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)
    try:
        await asyncio.gather(relay.run(), server.serve())
    finally:
        await nc.drain()
        store.close()
        log.info("relay.stopped")


if __name__ == "__main__":
    asyncio.run(main())
