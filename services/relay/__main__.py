"""``python -m services.relay``: run the relay with its /health, /ready and /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import anyio.to_thread
import structlog

from services.relay.lease import FileLease, Lease, PostgresLease
from services.relay.relay import Relay, RelaySettings
from shared.eventstore import EventStore
from shared.eventstore.store import STORE_NAME, postgres_conninfo
from shared.http.operations import operations_server
from shared.messaging import connect, ensure_streams
from shared.observability import configure_logging

SERVICE = "relay"
log = structlog.get_logger(__name__)


def lease_for(store: EventStore) -> Lease:
    env = store.env
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return PostgresLease(postgres_conninfo(env), f"{STORE_NAME}:relay")
    return FileLease(Path(f"{env['SQLITE_DBNAME']}.relay.lock"))


async def main() -> None:
    configure_logging(SERVICE)
    store = EventStore()
    tracking = store.tracking()
    nc = await connect(name="tutorpulse-relay")
    js = nc.jetstream(publish_async_max_pending=5000)
    await ensure_streams(js)
    relay = Relay(store, tracking, js, lease_for(store), RelaySettings(
        batch_size=int(os.environ.get("TUTORPULSE_RELAY_BATCH_SIZE", "500"))))

    async def ready() -> None:
        if not nc.is_connected:
            raise ConnectionError("NATS is not connected")
        await anyio.to_thread.run_sync(store.recorder.max_notification_id)

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
