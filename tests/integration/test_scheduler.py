"""The scheduler against a real nats-server: timers derived from events fire at their time
(a fast clock runs the centre's day in seconds) and record exactly one event each, as SYSTEM;
a timer cancelled or overtaken by the domain records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.command.commands.help_requests import ResolveHelpRequest
from services.scheduler.clock import FastClock
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from shared import events
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.settings import load
from shared.tenancy import Role
from tests.builders import Centre, register_centre
from tests.integration.conftest import NatsAs
from tests.support.servers import NatsServer
from tests.support.timers import (
    events_after,
    eventually,
    help_request,
    of_type,
    relay_until,
    session,
    timers_settled,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def centres(tmp_path: Path) -> AsyncIterator[TutoringCentres]:
    app = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield app
    app.close()


async def test_a_reminder_and_an_escalation_fire_once_each_and_stale_timers_record_nothing(
    tmp_path: Path, nats_server: NatsServer, nats_as: NatsAs, nc: Client, centres: TutoringCentres
) -> None:
    await ensure_streams((await nats_as("relay")).jetstream())
    alpha: Centre = register_centre(centres, "alpha")
    settings = load(
        SchedulerSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
            **nats_server.env_for("scheduler"),
        },
    )
    # An hour of the centre's day passes in 10 s of the wall clock.
    clock = FastClock(rate=360.0, epoch=datetime.now(UTC))
    scheduler = Scheduler(settings, centres, clock)
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_until(nc.jetstream(), centres, stop))
    try:
        await scheduler.connect()
        await scheduler.start()
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
        later = session(centres, alpha, starts_at=starts)  # reminded 15 min before: ~1 s
        live = session(
            centres,
            alpha,
            starts_at=datetime.now(UTC) - timedelta(minutes=5),
            students=("ann", "ben"),
            live=True,
        )
        ann_request, _ = help_request(centres, alpha, live, "ann")  # URGENT: 2 min, ~0.3 s
        ben_request, _ = help_request(centres, alpha, live, "ben")
        centres.handle(  # answered in time: its timer is cancelled
            alpha["tutor"],
            ResolveHelpRequest(session_id=live, request_id=ben_request, response="there"),
        )

        def found() -> list[events.Event]:
            return events_after(centres, 0)

        await eventually(
            lambda: (
                len(of_type(found(), events.SessionReminderSent)) >= 1
                and len(of_type(found(), events.HelpRequestEscalated)) >= 1
            ),
            "the reminder and the escalation",
        )
        await timers_settled(nc.jetstream())
        [reminder] = of_type(found(), events.SessionReminderSent)
        [escalation] = of_type(found(), events.HelpRequestEscalated)
        assert (reminder.session_id, reminder.starts_at, reminder.minutes_before) == (
            later,
            starts,
            15,
        )
        assert escalation.help_request_id == ann_request
        assert {reminder.actor_role, escalation.actor_role} == {Role.SYSTEM}
        assert scheduler.tally.fired.get("recorded") == 2

        async with httpx.AsyncClient() as client:  # nothing else to check here: served later
            assert client is not None
    finally:
        stop.set()
        await relay
        await scheduler.stop()
