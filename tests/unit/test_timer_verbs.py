"""What timers do when they fire, as the domain decides it: each verb records its event once,
as SYSTEM, and records nothing when it no longer applies (the session moved, ended or was
extended; the request was answered; the work was done), which is how a late, repeated or
stale timer stays harmless. No person may ask for any of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.command.application import TutoringCentres
from services.command.commands.catch_ups import CompleteCatchUp
from services.command.commands.centres import ChangeReminders
from services.command.commands.help_requests import ResolveHelpRequest
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EndSession, ExtendSession, RescheduleSession
from services.command.commands.timers import (
    CompleteOverdueSession,
    EscalateHelpRequest,
    MarkCatchUpOverdue,
    MarkHomeworkOverdue,
    SendAttendanceReminder,
    SendCatchUpReminder,
    SendHomeworkReminder,
    SendSessionReminder,
)
from services.command.domain.aggregate import NotFound
from shared import events
from shared.events import AttendanceStatus, HelpRequestCloseReason
from shared.eventstore import EventStoreSettings
from shared.settings import load
from shared.tenancy import Forbidden, Role
from shared.tenancy.permissions import system_actor
from shared.tenancy.roles import SYSTEM_ACTOR_ID
from tests.builders import Centre, register_centre
from tests.support.timers import (
    catch_up,
    events_after,
    help_request,
    homework,
    now,
    of_type,
    session,
)


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    app = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield app
    app.close()


@pytest.fixture
def alpha(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "alpha")


def recorded(centres: TutoringCentres, command: object, centre: str = "alpha") -> bool:
    result = centres.handle(system_actor(centre), command)  # type: ignore[arg-type]
    return bool(result.body["recorded"])


def test_a_session_is_reminded_once_of_each_start_it_has(
    centres: TutoringCentres, alpha: Centre
) -> None:
    starts = now() + timedelta(hours=3)
    session_id = session(centres, alpha, starts_at=starts)
    before = centres.position
    remind = SendSessionReminder(session_id=session_id, starts_at=starts, minutes_before=15)
    assert recorded(centres, remind)
    assert not recorded(centres, remind)  # a redelivered timer
    [sent] = of_type(events_after(centres, before), events.SessionReminderSent)
    assert (sent.starts_at, sent.minutes_before) == (starts, 15)
    assert (sent.actor_role, sent.actor_id) == (Role.SYSTEM, SYSTEM_ACTOR_ID)

    moved = starts + timedelta(days=1)
    centres.handle(
        alpha["tutor"],
        RescheduleSession(
            session_id=session_id, starts_at=moved, ends_at=moved + timedelta(hours=1)
        ),
    )
    # The timer set for the old start fires late: it no longer applies.
    stale = SendSessionReminder(session_id=session_id, starts_at=starts, minutes_before=15)
    assert not recorded(centres, stale)
    assert recorded(
        centres, SendSessionReminder(session_id=session_id, starts_at=moved, minutes_before=15)
    )


def test_a_session_left_live_past_its_end_is_completed_and_its_open_requests_closed(
    centres: TutoringCentres, alpha: Centre
) -> None:
    starts = now() - timedelta(minutes=30)
    session_id = session(centres, alpha, starts_at=starts, minutes=60, live=True)
    help_request(centres, alpha, session_id)
    ends = starts + timedelta(minutes=60)
    centres.handle(alpha["tutor"], ExtendSession(session_id=session_id, minutes=10))
    before = centres.position
    # Extended: the timer for the planned end no longer applies.
    assert not recorded(centres, CompleteOverdueSession(session_id=session_id, ends_at=ends))
    extended = ends + timedelta(minutes=10)
    assert recorded(centres, CompleteOverdueSession(session_id=session_id, ends_at=extended))
    assert not recorded(centres, CompleteOverdueSession(session_id=session_id, ends_at=extended))
    found = events_after(centres, before)
    assert [type(e).__name__ for e in found] == ["SessionEnded", "HelpRequestClosed"]
    assert {e.actor_role for e in found} == {Role.SYSTEM}
    [closed] = of_type(found, events.HelpRequestClosed)
    assert closed.reason is HelpRequestCloseReason.SESSION_ENDED


def test_a_tutor_is_reminded_once_of_the_students_left_unmarked(
    centres: TutoringCentres, alpha: Centre
) -> None:
    session_id = session(
        centres,
        alpha,
        starts_at=now() - timedelta(minutes=50),
        students=("ann", "ben", "cal"),
        live=True,
    )
    centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=session_id,
            records=[
                AttendanceRecord(student_id=alpha["ann"].user_id, status=AttendanceStatus.PRESENT)
            ],
        ),
    )
    remind = SendAttendanceReminder(session_id=session_id)
    assert not recorded(centres, remind)  # still LIVE
    centres.handle(alpha["tutor"], EndSession(session_id=session_id))
    before = centres.position
    assert recorded(centres, remind)
    assert not recorded(centres, remind)
    [sent] = of_type(events_after(centres, before), events.AttendanceReminderSent)
    assert set(sent.unmarked_student_ids) == {alpha["ben"].user_id, alpha["cal"].user_id}


def test_a_help_request_past_its_sla_is_escalated_once_unless_it_was_answered(
    centres: TutoringCentres, alpha: Centre
) -> None:
    session_id = session(
        centres, alpha, starts_at=now() - timedelta(minutes=5), students=("ann", "ben"), live=True
    )
    ann_request, ann_due = help_request(centres, alpha, session_id, "ann")
    ben_request, ben_due = help_request(centres, alpha, session_id, "ben")
    centres.handle(
        alpha["tutor"],
        ResolveHelpRequest(session_id=session_id, request_id=ben_request, response="done"),
    )
    before = centres.position

    def escalate(student: str, request: object, due: object) -> bool:
        return recorded(
            centres,
            EscalateHelpRequest(
                session_id=session_id,
                student_id=alpha[student].user_id,
                help_request_id=request,  # type: ignore[arg-type]
                sla_due_at=due,  # type: ignore[arg-type]
            ),
        )

    assert not escalate("ann", ann_request, ann_due + timedelta(seconds=1))  # not its due time
    assert escalate("ann", ann_request, ann_due)
    assert not escalate("ann", ann_request, ann_due)
    assert not escalate("ben", ben_request, ben_due)  # resolved in time
    [escalated] = of_type(events_after(centres, before), events.HelpRequestEscalated)
    assert (escalated.help_request_id, escalated.sla_due_at) == (ann_request, ann_due)
    assert escalated.student_id == alpha["ann"].user_id
    assert len(events_after(centres, before)) == 1


def test_catch_ups_are_reminded_and_become_overdue_once_while_open(
    centres: TutoringCentres, alpha: Centre
) -> None:
    session_id = session(
        centres, alpha, starts_at=now() - timedelta(minutes=5), students=("ann", "ben"), live=True
    )
    due = now() + timedelta(days=2)
    open_one = catch_up(centres, alpha, session_id, due, "ann")
    done = catch_up(centres, alpha, session_id, due, "ben")
    centres.handle(alpha["tutor"], CompleteCatchUp(catch_up_id=done))
    before = centres.position
    assert recorded(centres, SendCatchUpReminder(catch_up_id=open_one, due_at=due))
    assert not recorded(centres, SendCatchUpReminder(catch_up_id=open_one, due_at=due))
    assert not recorded(centres, MarkCatchUpOverdue(catch_up_id=open_one, due_at=now()))
    assert recorded(centres, MarkCatchUpOverdue(catch_up_id=open_one, due_at=due))
    assert not recorded(centres, MarkCatchUpOverdue(catch_up_id=open_one, due_at=due))
    assert not recorded(centres, SendCatchUpReminder(catch_up_id=done, due_at=due))
    assert not recorded(centres, MarkCatchUpOverdue(catch_up_id=done, due_at=due))
    found = events_after(centres, before)
    assert [type(e).__name__ for e in found] == ["CatchUpReminderSent", "CatchUpBecameOverdue"]
    assert all(
        e.catch_up_id == open_one and e.due_at == due  # type: ignore[attr-defined]
        for e in found
    )


def test_homework_is_reminded_and_becomes_overdue_once_until_handed_in(
    centres: TutoringCentres, alpha: Centre
) -> None:
    due = now() + timedelta(hours=30)
    homework_id = homework(centres, alpha, due)
    before = centres.position
    assert recorded(centres, SendHomeworkReminder(homework_id=homework_id, due_at=due))
    assert not recorded(centres, SendHomeworkReminder(homework_id=homework_id, due_at=due))
    assert recorded(centres, MarkHomeworkOverdue(homework_id=homework_id, due_at=due))
    assert not recorded(centres, MarkHomeworkOverdue(homework_id=homework_id, due_at=due))
    found = events_after(centres, before)
    assert [type(e).__name__ for e in found] == ["HomeworkDueReminderSent", "HomeworkBecameOverdue"]
    assert {e.aggregate_id for e in found} == {homework_id}


def test_no_person_may_fire_a_timer_and_system_acts_only_in_its_centre(
    centres: TutoringCentres, alpha: Centre
) -> None:
    starts = now() + timedelta(hours=3)
    session_id = session(centres, alpha, starts_at=starts)
    remind = SendSessionReminder(session_id=session_id, starts_at=starts, minutes_before=15)
    for person in ("root", "admin", "supervisor", "tutor", "ann"):
        with pytest.raises(Forbidden):
            centres.handle(alpha[person], remind)
    register_centre(centres, "beta")
    with pytest.raises(NotFound):
        centres.handle(system_actor("beta"), remind)
    assert recorded(centres, remind)


def test_a_centre_admin_sets_the_reminder_lead_time(
    centres: TutoringCentres, alpha: Centre
) -> None:
    before = centres.position
    change = ChangeReminders(centre_id="alpha", session_reminder_minutes=30)
    assert centres.handle(alpha["admin"], change).body == {
        "centreId": "alpha",
        "sessionReminderMinutes": 30,
        "changed": True,
    }
    assert centres.handle(alpha["admin"], change).body["changed"] is False
    [changed] = of_type(events_after(centres, before), events.CentreRemindersChanged)
    assert (changed.session_reminder_minutes, changed.previous_minutes) == (30, 15)
    with pytest.raises(Forbidden):
        centres.handle(alpha["tutor"], change)
