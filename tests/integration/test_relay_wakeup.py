"""The relay is woken by each commit, not by its poll: on PostgreSQL by the commit's
notification, on SQLite by a commit of its own process.

The relay here polls only every 30 s; an event committed while it waits must still reach
JetStream well within that (the tests wait up to 10 s: only a broken wake-up fails them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
import psycopg
import pytest
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.relay.lease import FileLease
from services.relay.relay import Relay
from services.relay.settings import RelaySettings
from services.relay.wakeup import InProcess, PostgresWakeup, Wakeup, wakeup_for
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import postgres_conninfo
from shared.messaging import ensure_streams
from shared.settings import load
from tests.builders import Centre, plan, register_centre

pytestmark = pytest.mark.integration

POLL_SECONDS = 30.0
ARRIVES_WITHIN = 10.0
SLOW_POLLS = RelaySettings(
    idle_poll_seconds=POLL_SECONDS,
    max_idle_poll_seconds=POLL_SECONDS,
    listening_poll_seconds=POLL_SECONDS,
)


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def schedule_one(centres: TutoringCentres, centre: Centre) -> int:
    """Commit a command (in a worker thread, as the command service does); its position."""
    await anyio.to_thread.run_sync(lambda: centres.handle(centre["tutor"], plan()))
    return centres.position


W = TypeVar("W", bound=Wakeup)


@asynccontextmanager
async def relaying(
    centres: TutoringCentres, nc: Client, tmp_path: Path, kind: type[W]
) -> AsyncIterator[tuple[Relay, W]]:
    """A relay on ``centres`` that polls every 30 s, woken by the store's wake-up (a ``kind``),
    caught up and waiting (listening first, where the wake-up listens); stopped after."""
    js = nc.jetstream()
    await ensure_streams(js)
    wakeup = wakeup_for(centres)
    assert isinstance(wakeup, kind)
    relay = Relay(
        centres,
        centres.tracking(),
        js,
        FileLease(tmp_path / "relay.lock"),
        SLOW_POLLS,
        nc=nc,
        wakeup=wakeup,
    )
    task = asyncio.create_task(relay.run())
    try:
        head = centres.position
        listens = isinstance(wakeup, PostgresWakeup)
        await wait_until(
            lambda: wakeup.listening == listens and relay.position == head, ARRIVES_WITHIN
        )
        # An empty read after the position moved: the relay now waits (30 s, or a wake-up).
        await wait_until(lambda: relay.lag == 0, ARRIVES_WITHIN)
        yield relay, wakeup
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)


async def test_a_committed_event_is_relayed_without_waiting_for_the_poll(
    pg_centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    alpha = register_centre(pg_centres, "alpha")
    arrived: list[str] = []

    async def on_event(message: object) -> None:
        arrived.append(getattr(message, "subject", ""))

    await nc.subscribe("tp.evt.alpha.>", cb=on_event)
    async with relaying(pg_centres, nc, tmp_path, PostgresWakeup) as (relay, _):

        async def one_more() -> None:
            before = len(arrived)
            position = await schedule_one(pg_centres, alpha)
            await wait_until(lambda: relay.position >= position, ARRIVES_WITHIN)
            await wait_until(lambda: len(arrived) > before, ARRIVES_WITHIN)
            await wait_until(lambda: relay.lag == 0, ARRIVES_WITHIN)

        for _ in range(3):  # each one while the relay waits for its next 30 s poll
            await one_more()
    assert any(subject.endswith(".SessionScheduled") for subject in arrived)


async def test_the_wakeup_listens_again_after_losing_its_connection(
    pg_centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    alpha = register_centre(pg_centres, "alpha")
    conninfo = postgres_conninfo(pg_centres.env)
    async with relaying(pg_centres, nc, tmp_path, PostgresWakeup) as (relay, wakeup):
        with psycopg.connect(conninfo, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
            ).fetchall()
        assert ended, "the relay has a listening connection"
        await wait_until(lambda: wakeup.connections == 2 and wakeup.listening, ARRIVES_WITHIN)
        # Listening again (and the ring it gives on reconnecting already answered): the next
        # commit still wakes the relay.
        await wait_until(lambda: relay.lag == 0, ARRIVES_WITHIN)
        position = await schedule_one(pg_centres, alpha)
        await wait_until(lambda: relay.position >= position, ARRIVES_WITHIN)


async def test_on_sqlite_a_commit_of_the_same_process_wakes_the_relay(
    nc: Client, tmp_path: Path
) -> None:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    try:
        alpha = register_centre(centres, "alpha")
        async with relaying(centres, nc, tmp_path, InProcess) as (relay, wakeup):
            assert not wakeup.listening

            async def one_more() -> None:
                position = await schedule_one(centres, alpha)
                await wait_until(lambda: relay.position >= position, ARRIVES_WITHIN)
                await wait_until(lambda: relay.lag == 0, ARRIVES_WITHIN)

            for _ in range(3):  # each one while the relay waits for its next 30 s poll
                await one_more()
    finally:
        centres.close()
