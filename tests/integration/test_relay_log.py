"""The relay's reads of the notification log and records of its position: on PostgreSQL over a
connection of its own, on SQLite through the library's recorders; either reads what the
library reads and records what the library's tracking recorder finds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import Notification
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.relay.lease import FileLease
from services.relay.notifications import APPLICATION_NAME, PostgresLog, RecorderLog, relay_log
from services.relay.relay import TRACKING_NAME, Relay
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import postgres_conninfo
from shared.messaging import ensure_streams
from shared.settings import load
from tests.builders import plan, register_centre
from tests.integration.test_relay import assert_streamed_exactly_once_in_order, wait_until
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "sqlite"])
def centres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TutoringCentres]:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        env = pg.env()
    else:
        env = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    store = TutoringCentres(load(EventStoreSettings, env))
    yield store
    store.close()


def fields(notifications: list[Notification]) -> list[tuple[object, ...]]:
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


async def test_the_log_reads_and_records_what_the_library_reads(
    centres: TutoringCentres,
) -> None:
    register_centre(centres, "alpha")
    tracking = centres.tracking()
    log = relay_log(centres, tracking, TRACKING_NAME)
    kind = (
        PostgresLog
        if centres.env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite"
        else RecorderLog
    )
    assert isinstance(log, kind)
    try:
        library = list(centres.recorder.select_notifications(1, 1_000))
        assert len(library) > 6
        assert fields(list(await log.read(0, 1_000))) == fields(library)
        assert fields(list(await log.read(2, 3))) == fields(library[2:5])
        assert list(await log.read(library[-1].id, 10)) == []

        await log.record(5)
        assert tracking.max_tracking_id(TRACKING_NAME) == 5
        await log.record(3)  # behind the recorded position: accepted, and left where it was
        await log.record(5)
        assert tracking.max_tracking_id(TRACKING_NAME) == 5
        await log.record(7)
        assert tracking.max_tracking_id(TRACKING_NAME) == 7
    finally:
        await log.close()


async def test_a_relay_whose_postgres_connection_is_killed_relays_every_event_once_in_order(
    pg_centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    """The connection of its reads and records dies (as in a server restart or a network
    cut): the read or record that finds it dead fails, the relay reads again on a new one."""
    alpha = register_centre(pg_centres, "alpha")
    js = nc.jetstream()
    await ensure_streams(js)
    relay = Relay(pg_centres, pg_centres.tracking(), js, FileLease(tmp_path / "relay.lock"), nc=nc)
    task = asyncio.create_task(relay.run())
    conninfo = postgres_conninfo(pg_centres.env)
    try:
        await assert_streamed_exactly_once_in_order(js, pg_centres)
        for _ in range(3):
            with psycopg.connect(conninfo, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (APPLICATION_NAME,),
                ).fetchall()
            assert ended, "the relay reads on a connection of its own"
            pg_centres.handle(alpha["tutor"], plan())
            pg_centres.handle(alpha["tutor"], plan())
            await assert_streamed_exactly_once_in_order(js, pg_centres)

        async def recorded() -> bool:
            head = pg_centres.position
            return relay.position == head and (
                pg_centres.tracking().max_tracking_id(TRACKING_NAME) == head
            )

        await wait_until(recorded)
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
