"""Which timers each event sets, moves or cancels (the scheduler's derivation, a pure
function of the event and the time), what a timer asks the domain for, the clock that runs a
centre's day in seconds, and what the scheduler's NATS user may do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from services.command.commands.timers import (
    CompleteOverdueSession,
    EscalateHelpRequest,
    SendSessionReminder,
)
from services.scheduler.clock import FastClock, WallClock
from services.scheduler.settings import TimerSettings
from services.scheduler.timers import (
    Cancel,
    MoveSessionReminders,
    Plan,
    Timer,
    TimerKind,
    plans_for,
)
from shared import events as ev
from shared.messaging.auth import PERMISSIONS
from shared.tenancy import Role

NOW = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
SETTINGS = TimerSettings()
SESSION, STUDENT, REQUEST = uuid4(), uuid4(), uuid4()


def envelope(aggregate: UUID = SESSION, at: datetime = NOW) -> dict[str, Any]:
    return {
        "centre_id": "alpha",
        "aggregate_id": aggregate,
        "aggregate_version": 1,
        "occurred_at": at,
        "actor_id": uuid4(),
        "actor_role": Role.TEACHER,
    }


def plans(event: ev.Event, now: datetime = NOW, lead: int = 15) -> list[Plan]:
    return plans_for(event, now=now, lead_minutes=lead, settings=SETTINGS)


def timers(found: list[Plan]) -> dict[TimerKind, Timer]:
    return {p.kind: p for p in found if isinstance(p, Timer)}


def cancelled(found: list[Plan]) -> set[TimerKind]:
    return {p.kind for p in found if isinstance(p, Cancel)}


def scheduled(starts: datetime, event: type[ev.Event] = ev.SessionScheduled) -> ev.Event:
    fields: dict[str, Any] = {
        "session_id": SESSION,
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=1),
    }
    if event is ev.SessionScheduled:
        fields |= {
            "title": "Fractions",
            "tutor_id": uuid4(),
            "time_zone": "Australia/Sydney",
            "mode": ev.SessionMode.ONLINE,
        }
    return event(**envelope(), **fields)


def test_a_session_is_reminded_at_the_centres_lead_time_and_completed_after_its_end() -> None:
    starts = NOW + timedelta(hours=2)
    found = timers(plans(scheduled(starts), lead=30))
    reminder = found[TimerKind.SESSION_REMINDER]
    assert (reminder.due_at, reminder.at, reminder.minutes_before) == (
        starts - timedelta(minutes=30),
        starts,
        30,
    )
    assert reminder.plan_subject == f"tp.timer.plan.alpha.session-reminder.{SESSION}"
    assert reminder.fire_subject == f"tp.timer.fire.alpha.session-reminder.{SESSION}"
    completion = found[TimerKind.SESSION_COMPLETION]
    assert completion.due_at == starts + timedelta(hours=1, minutes=30)
    assert completion.command() == CompleteOverdueSession(
        session_id=SESSION, ends_at=starts + timedelta(hours=1)
    )


def test_a_moved_session_moves_both_timers_and_a_late_one_is_reminded_at_once() -> None:
    moved = NOW + timedelta(minutes=10)  # less than the lead time away
    found = plans(scheduled(moved, ev.SessionRescheduled))
    reminder = timers(found)[TimerKind.SESSION_REMINDER]
    assert reminder.due_at == NOW and reminder.at == moved
    assert reminder.command() == SendSessionReminder(
        session_id=SESSION, starts_at=moved, minutes_before=15
    )
    # One that should have started already is not reminded at all.
    assert cancelled(plans(scheduled(NOW - timedelta(minutes=1)))) == {TimerKind.SESSION_REMINDER}


def test_starting_ending_and_cancelling_a_session_cancel_and_set_its_timers() -> None:
    started = ev.SessionStarted(**envelope(), session_id=SESSION)
    assert cancelled(plans(started)) == {TimerKind.SESSION_REMINDER}
    ended_at = NOW + timedelta(minutes=50)
    ended = ev.SessionEnded(**envelope(at=ended_at), session_id=SESSION)
    found = plans(ended)
    assert cancelled(found) == {TimerKind.SESSION_COMPLETION}
    attendance = timers(found)[TimerKind.ATTENDANCE_REMINDER]
    assert attendance.due_at == ended_at + timedelta(minutes=15)
    cancel = ev.SessionCancelled(**envelope(), session_id=SESSION, reason="flood")
    assert cancelled(plans(cancel)) == {TimerKind.SESSION_REMINDER, TimerKind.SESSION_COMPLETION}
    extended = ev.SessionExtended(
        **envelope(), session_id=SESSION, minutes=20, ends_at=NOW + timedelta(minutes=80)
    )
    completion = timers(plans(extended))[TimerKind.SESSION_COMPLETION]
    assert completion.at == NOW + timedelta(minutes=80)


def test_a_help_request_is_escalated_at_its_sla_unless_answered_first() -> None:
    due = NOW + timedelta(minutes=2)
    raised = ev.HelpRequestRaised(
        **envelope(seat := uuid4()),
        session_id=SESSION,
        student_id=STUDENT,
        help_request_id=REQUEST,
        priority=ev.HelpPriority.URGENT,
        sla_due_at=due,
    )
    escalation = timers(plans(raised))[TimerKind.HELP_ESCALATION]
    assert escalation.due_at == due and escalation.about == REQUEST
    assert escalation.command() == EscalateHelpRequest(
        session_id=SESSION, student_id=STUDENT, help_request_id=REQUEST, sla_due_at=due
    )
    base = {**envelope(seat), "session_id": SESSION, "student_id": STUDENT}
    for answered in (
        ev.HelpRequestResolved(**base, help_request_id=REQUEST, response="ok"),
        ev.HelpRequestCancelled(**base, help_request_id=REQUEST),
        ev.HelpRequestClosed(
            **base, help_request_id=REQUEST, reason=ev.HelpRequestCloseReason.SESSION_ENDED
        ),
    ):
        assert plans(answered) == [Cancel("alpha", TimerKind.HELP_ESCALATION, REQUEST)]
    # Acknowledging is not answering: the escalation stays set.
    ack = ev.HelpRequestAcknowledged(**base, help_request_id=REQUEST)
    assert plans(ack) == []


def test_catch_ups_and_homework_are_reminded_a_day_ahead_and_marked_overdue_when_due() -> None:
    catch_up, work = uuid4(), uuid4()
    due = NOW + timedelta(days=3)
    assigned = ev.CatchUpAssigned(
        **envelope(catch_up), session_id=SESSION, student_id=STUDENT, due_at=due, reason="absent"
    )
    found = timers(plans(assigned))
    assert found[TimerKind.CATCH_UP_REMINDER].due_at == due - timedelta(days=1)
    assert found[TimerKind.CATCH_UP_OVERDUE].due_at == due
    done = ev.CatchUpCompleted(**envelope(catch_up), session_id=SESSION, student_id=STUDENT)
    assert cancelled(plans(done)) == {TimerKind.CATCH_UP_REMINDER, TimerKind.CATCH_UP_OVERDUE}

    soon = NOW + timedelta(hours=5)  # due within the day: only the overdue timer
    homework = ev.HomeworkAssigned(
        **envelope(work),
        student_id=STUDENT,
        teacher_id=uuid4(),
        title="Halves",
        exercise_ids=(uuid4(),),
        max_score=1,
        due_at=soon,
    )
    found_plans = plans(homework)
    assert set(timers(found_plans)) == {TimerKind.HOMEWORK_OVERDUE}
    assert cancelled(found_plans) == set()
    handed_in = ev.HomeworkSubmitted(
        **envelope(work),
        student_id=STUDENT,
        teacher_id=uuid4(),
        answers={},
        on_time=True,
        status=ev.HomeworkStatus.SUBMITTED,
        max_score=1,
    )
    assert cancelled(plans(handed_in)) == {TimerKind.HOMEWORK_REMINDER, TimerKind.HOMEWORK_OVERDUE}


def test_a_new_lead_time_moves_the_centres_reminders_and_other_events_set_nothing() -> None:
    changed = ev.CentreRemindersChanged(
        **envelope(uuid4()), session_reminder_minutes=45, previous_minutes=15
    )
    assert plans(changed) == [MoveSessionReminders("alpha", 45)]
    enrolled = ev.StudentEnrolled(**envelope(), session_id=SESSION, student_id=STUDENT)
    assert plans(enrolled) == []


def test_a_timer_travels_as_json_and_its_idempotency_key_names_it_and_its_time() -> None:
    timer = Timer(
        centre_id="alpha",
        kind=TimerKind.HOMEWORK_OVERDUE,
        about=uuid4(),
        due_at=NOW,
        at=NOW,
    )
    assert msgspec.json.decode(msgspec.json.encode(timer), type=Timer) == timer
    key = timer.idempotency_key
    assert key.key == f"timer:homework-overdue:{timer.about}:{NOW.isoformat()}"
    assert key == Timer(**msgspec.structs.asdict(timer)).idempotency_key
    later = msgspec.structs.replace(
        timer, due_at=NOW + timedelta(days=1), at=NOW + timedelta(days=1)
    )
    assert later.idempotency_key.key != key.key


def test_a_fast_clock_runs_the_day_from_its_epoch_and_the_wall_clock_is_itself() -> None:
    epoch = datetime.now(UTC)
    clock = FastClock(rate=3600.0, epoch=epoch)
    assert clock.wall_time(epoch + timedelta(hours=2)) == epoch + timedelta(seconds=2)
    assert clock.now() >= epoch
    assert WallClock().wall_time(NOW) == NOW


def test_the_scheduler_user_may_do_its_job_and_nothing_else() -> None:
    allowed = PERMISSIONS["scheduler"]
    assert not any(
        s.startswith(("tp.evt", "tp.delta", "tp.timer.fire", ">")) for s in allowed.publish
    )
    assert not any(
        f".STREAM.{verb}." in s for s in allowed.publish for verb in ("CREATE", "UPDATE", "DELETE")
    )
    assert [s for s in allowed.publish if ".STREAM.PURGE." in s] == [
        "$JS.API.STREAM.PURGE.TP_TIMERS"
    ]
    assert "tp.timer.plan.>" in allowed.publish
    assert allowed.subscribe == ("_INBOX.scheduler.>",)
