"""The scheduler against a real nats-server: timers derived from events fire at their time
(a fast clock runs the centre's day in seconds) and record exactly one event each, as SYSTEM;
a timer cancelled or overtaken by the domain records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.command.commands.centres import ChangeReminders
from services.command.commands.help_requests import ResolveHelpRequest
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import CancelSession
from services.scheduler.clock import FastClock
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from services.scheduler.timers import Timer, TimerKind
from shared import events
from shared.events import AttendanceStatus
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.settings import load
from shared.tenancy import Role
from tests.builders import Centre, register_centre
from tests.integration.conftest import NatsAs
from tests.support.servers import NatsServer
from tests.support.timers import (
    catch_up,
    events_after,
    eventually,
    help_request,
    homework,
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

    finally:
        stop.set()
        await relay
        await scheduler.stop()


async def running_scheduler(
    tmp_path: Path, nats_server: NatsServer, centres: TutoringCentres, rate: float, **env: str
) -> Scheduler:
    settings = load(
        SchedulerSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
            **nats_server.env_for("scheduler"),
            **env,
        },
    )
    scheduler = Scheduler(settings, centres, FastClock(rate=rate, epoch=datetime.now(UTC)))
    await scheduler.connect()
    await scheduler.start()
    return scheduler


async def test_a_centres_day_in_seconds(
    tmp_path: Path, nats_server: NatsServer, nats_as: NatsAs, nc: Client, centres: TutoringCentres
) -> None:
    """Two hours of a centre's day, at an hour per two seconds: a reminder moved by a new lead
    time, a cancelled session's reminder that never fires, a session nobody ended completed by
    the system with its tutor reminded of the unmarked student, and catch-up and homework
    reminded, then overdue."""
    await ensure_streams((await nats_as("relay")).jetstream())
    alpha = register_centre(centres, "alpha")
    js = nc.jetstream()
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_until(js, centres, stop))
    scheduler = await running_scheduler(
        tmp_path,
        nats_server,
        centres,
        1800.0,
        TUTORPULSE_SCHEDULER_DUE_REMINDER_HOURS="1",
    )
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        reminded = session(centres, alpha, starts_at=now + timedelta(hours=3))
        cancelled = session(centres, alpha, starts_at=now + timedelta(hours=2))
        centres.handle(alpha["tutor"], CancelSession(session_id=cancelled, reason="flood"))
        # Reminded 150 minutes ahead instead of 15: at 30 minutes, not at 2 h 45.
        centres.handle(
            alpha["admin"], ChangeReminders(centre_id="alpha", session_reminder_minutes=150)
        )
        forgotten = session(
            centres,
            alpha,
            starts_at=now - timedelta(minutes=5),
            students=("ann", "ben"),
            live=True,
        )
        centres.handle(
            alpha["tutor"],
            MarkAttendance(
                session_id=forgotten,
                records=[
                    AttendanceRecord(
                        student_id=alpha["ann"].user_id, status=AttendanceStatus.PRESENT
                    )
                ],
            ),
        )
        owed = catch_up(centres, alpha, forgotten, now + timedelta(hours=2), "ben")
        work = homework(centres, alpha, now + timedelta(minutes=90))

        def found() -> list[events.Event]:
            return events_after(centres, 0)

        expected: dict[type[events.Event], int] = {
            events.SessionReminderSent: 1,
            events.SessionEnded: 1,
            events.AttendanceReminderSent: 1,
            events.CatchUpReminderSent: 1,
            events.CatchUpBecameOverdue: 1,
            events.HomeworkDueReminderSent: 1,
            events.HomeworkBecameOverdue: 1,
        }
        await eventually(
            lambda: all(len(of_type(found(), kind)) >= n for kind, n in expected.items()),
            "the day's timers",
        )
        await timers_settled(js)
        everything = found()
        assert {kind: len(of_type(everything, kind)) for kind in expected} == expected
        [reminder] = of_type(everything, events.SessionReminderSent)
        assert (reminder.session_id, reminder.minutes_before) == (reminded, 150)
        [ended] = of_type(everything, events.SessionEnded)
        assert (ended.session_id, ended.actor_role) == (forgotten, Role.SYSTEM)
        [attendance] = of_type(everything, events.AttendanceReminderSent)
        assert attendance.unmarked_student_ids == [alpha["ben"].user_id]
        assert {e.aggregate_id for e in of_type(everything, events.CatchUpBecameOverdue)} == {owed}
        assert {e.aggregate_id for e in of_type(everything, events.HomeworkBecameOverdue)} == {work}
        # The cancelled session's reminder was taken out of TP_TIMERS, not left to fire.
        info = await js.stream_info(
            "TP_TIMERS", subjects_filter=f"tp.timer.plan.alpha.session-reminder.{cancelled}"
        )
        assert not info.state.subjects
    finally:
        stop.set()
        await relay
        await scheduler.stop()


async def test_a_bad_timer_is_dead_lettered_and_one_of_another_centre_refused(
    tmp_path: Path, nats_server: NatsServer, nats_as: NatsAs, nc: Client, centres: TutoringCentres
) -> None:
    await ensure_streams((await nats_as("relay")).jetstream())
    js = nc.jetstream()
    alpha = register_centre(centres, "alpha")
    register_centre(centres, "beta")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    work = homework(centres, alpha, due)
    scheduler = await running_scheduler(tmp_path, nats_server, centres, 1.0)
    try:
        # A timer of centre beta naming alpha's homework: SYSTEM of beta cannot see it.
        foreign = Timer(
            centre_id="beta", kind=TimerKind.HOMEWORK_OVERDUE, about=work, due_at=due, at=due
        )
        await js.publish(foreign.fire_subject, msgspec.json.encode(foreign), stream="TP_TIMERS")
        await timers_settled(js)
        assert scheduler.tally.fired == {"refused": 1}
        assert of_type(events_after(centres, 0), events.HomeworkBecameOverdue) == []

        subject = "tp.timer.fire.alpha.homework-overdue.not-a-timer"
        await js.publish(subject, b"{not json", stream="TP_TIMERS")
        await timers_settled(js)
        dead = await js.get_last_msg("TP_DLQ", f"tp.dlq.scheduler.{subject}")
        assert dead.data == b"{not json"
        assert dead.headers is not None and dead.headers["Tp-Dlq-Reason"].startswith("not a timer")
    finally:
        await scheduler.stop()
