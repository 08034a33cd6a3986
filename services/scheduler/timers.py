"""Timers: what they are, where they live in JetStream, what each asks the domain for, and
which timers each event sets, moves or cancels.

A timer is one JetStream message schedule on ``tp.timer.plan.<centre>.<kind>.<id>``: setting it
again replaces it (roll-up of the subject), cancelling it purges the subject, and at its time
the server publishes its body to ``tp.timer.fire.<centre>.<kind>.<id>``. Its body says what to
ask for: :meth:`Timer.command`, issued as SYSTEM with :attr:`Timer.idempotency_key`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import msgspec

from services.command.commands.base import Command
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
from services.command.idempotency import IdempotencyKey
from services.scheduler.settings import TimerSettings
from shared import events as ev

PLAN_PREFIX = "tp.timer.plan"
FIRE_PREFIX = "tp.timer.fire"


class TimerKind(StrEnum):
    SESSION_REMINDER = "session-reminder"
    SESSION_COMPLETION = "session-completion"
    ATTENDANCE_REMINDER = "attendance-reminder"
    HELP_ESCALATION = "help-escalation"
    CATCH_UP_REMINDER = "catch-up-reminder"
    CATCH_UP_OVERDUE = "catch-up-overdue"
    HOMEWORK_REMINDER = "homework-reminder"
    HOMEWORK_OVERDUE = "homework-overdue"


def plan_subject(centre_id: str, kind: TimerKind, about: UUID) -> str:
    return f"{PLAN_PREFIX}.{centre_id}.{kind}.{about}"


def fire_subject(centre_id: str, kind: TimerKind, about: UUID) -> str:
    return f"{FIRE_PREFIX}.{centre_id}.{kind}.{about}"


class Timer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One timer: of ``kind``, about ``about`` (a session, help request, catch-up or
    homework), falling ``due_at``, for the moment ``at`` its command names (the session's
    start or end, the request's SLA, the work's due time)."""

    centre_id: str
    kind: TimerKind
    about: UUID
    due_at: datetime
    at: datetime
    session_id: UUID | None = None
    student_id: UUID | None = None
    minutes_before: int | None = None

    @property
    def plan_subject(self) -> str:
        return plan_subject(self.centre_id, self.kind, self.about)

    @property
    def fire_subject(self) -> str:
        return fire_subject(self.centre_id, self.kind, self.about)

    @property
    def idempotency_key(self) -> IdempotencyKey:
        """The same for every firing of this timer at this time, whichever replica fires it
        and however often: the command runs once, later firings replay its answer."""
        key = f"timer:{self.kind}:{self.about}:{self.due_at.isoformat()}"
        command = msgspec.json.encode(self.command())
        return IdempotencyKey(key, hashlib.sha256(command).hexdigest())

    def command(self) -> Command:
        kind, about, at = self.kind, self.about, self.at
        if kind is TimerKind.SESSION_REMINDER:
            return SendSessionReminder(
                session_id=about, starts_at=at, minutes_before=self.minutes_before or 1
            )
        if kind is TimerKind.SESSION_COMPLETION:
            return CompleteOverdueSession(session_id=about, ends_at=at)
        if kind is TimerKind.ATTENDANCE_REMINDER:
            return SendAttendanceReminder(session_id=about)
        if kind is TimerKind.HELP_ESCALATION:
            if self.session_id is None or self.student_id is None:
                raise ValueError("a help escalation names its session and student")
            return EscalateHelpRequest(
                session_id=self.session_id,
                student_id=self.student_id,
                help_request_id=about,
                sla_due_at=at,
            )
        if kind is TimerKind.CATCH_UP_REMINDER:
            return SendCatchUpReminder(catch_up_id=about, due_at=at)
        if kind is TimerKind.CATCH_UP_OVERDUE:
            return MarkCatchUpOverdue(catch_up_id=about, due_at=at)
        if kind is TimerKind.HOMEWORK_REMINDER:
            return SendHomeworkReminder(homework_id=about, due_at=at)
        return MarkHomeworkOverdue(homework_id=about, due_at=at)


@dataclass(frozen=True)
class Cancel:
    centre_id: str
    kind: TimerKind
    about: UUID

    @property
    def plan_subject(self) -> str:
        return plan_subject(self.centre_id, self.kind, self.about)


@dataclass(frozen=True)
class MoveSessionReminders:
    """The centre's reminder lead time changed: its session reminders not sent yet move."""

    centre_id: str
    minutes: int


Plan = Timer | Cancel | MoveSessionReminders

PLANNED_EVENTS: tuple[type[ev.Event], ...] = (
    ev.SessionScheduled,
    ev.SessionRescheduled,
    ev.SessionExtended,
    ev.SessionStarted,
    ev.SessionEnded,
    ev.SessionCancelled,
    ev.HelpRequestRaised,
    ev.HelpRequestResolved,
    ev.HelpRequestCancelled,
    ev.HelpRequestClosed,
    ev.CatchUpAssigned,
    ev.CatchUpCompleted,
    ev.CatchUpCancelled,
    ev.HomeworkAssigned,
    ev.HomeworkSubmitted,
    ev.CentreRemindersChanged,
)
"""The events that set, move or cancel a timer: the only ones the scheduler's consumer reads
(its filter), so the rest of the traffic (presence, exercise work, …) never reaches it."""


def planned_subjects() -> list[str]:
    """The consumer's filter: ``tp.evt.<centre>.<kind>.<key>.<EventType>`` of each planned type."""
    return [f"tp.evt.*.*.*.{kind.__name__}" for kind in PLANNED_EVENTS]


NEEDS_LEAD_TIME = (ev.SessionScheduled, ev.SessionRescheduled)
"""Events whose timers depend on the centre's reminder lead time."""


def session_reminder(
    centre_id: str, session_id: UUID, starts_at: datetime, minutes: int, now: datetime
) -> Timer | Cancel:
    """The reminder ``minutes`` before ``starts_at``; at once if that moment has passed but the
    session has not started; none once it should have started."""
    if now >= starts_at:
        return Cancel(centre_id, TimerKind.SESSION_REMINDER, session_id)
    return Timer(
        centre_id=centre_id,
        kind=TimerKind.SESSION_REMINDER,
        about=session_id,
        due_at=max(starts_at - timedelta(minutes=minutes), now),
        at=starts_at,
        minutes_before=minutes,
    )


def plans_for(
    event: ev.Event, *, now: datetime, lead_minutes: int, settings: TimerSettings
) -> list[Plan]:
    """The timers ``event`` sets, moves or cancels, at ``now``. ``lead_minutes``: the centre's
    session reminder lead time (read only for :data:`NEEDS_LEAD_TIME`)."""
    if not isinstance(event, PLANNED_EVENTS):
        return []
    centre = event.centre_id
    complete_after = timedelta(minutes=settings.complete_after_minutes)
    due_soon = timedelta(hours=settings.due_reminder_hours)

    def timer(
        kind: TimerKind,
        about: UUID,
        due_at: datetime,
        at: datetime,
        session_id: UUID | None = None,
        student_id: UUID | None = None,
    ) -> Timer:
        return Timer(
            centre_id=centre,
            kind=kind,
            about=about,
            due_at=due_at,
            at=at,
            session_id=session_id,
            student_id=student_id,
        )

    def reminder_and_overdue(
        reminder: TimerKind, overdue: TimerKind, about: UUID, due_at: datetime
    ) -> list[Plan]:
        plans: list[Plan] = [timer(overdue, about, due_at, due_at)]
        if now < due_at - due_soon:  # else too late to remind ahead: the overdue timer counts
            plans.append(timer(reminder, about, due_at - due_soon, due_at))
        return plans

    match event:
        case ev.SessionScheduled() | ev.SessionRescheduled():
            session = event.session_id
            return [
                session_reminder(centre, session, event.starts_at, lead_minutes, now),
                timer(
                    TimerKind.SESSION_COMPLETION,
                    session,
                    event.ends_at + complete_after,
                    event.ends_at,
                ),
            ]
        case ev.SessionExtended():
            return [
                timer(
                    TimerKind.SESSION_COMPLETION,
                    event.session_id,
                    event.ends_at + complete_after,
                    event.ends_at,
                )
            ]
        case ev.SessionStarted():
            return [Cancel(centre, TimerKind.SESSION_REMINDER, event.session_id)]
        case ev.SessionEnded():
            ended = event.occurred_at
            return [
                Cancel(centre, TimerKind.SESSION_COMPLETION, event.session_id),
                timer(
                    TimerKind.ATTENDANCE_REMINDER,
                    event.session_id,
                    ended + timedelta(minutes=settings.attendance_after_minutes),
                    ended,
                ),
            ]
        case ev.SessionCancelled():
            return [
                Cancel(centre, TimerKind.SESSION_REMINDER, event.session_id),
                Cancel(centre, TimerKind.SESSION_COMPLETION, event.session_id),
            ]
        case ev.HelpRequestRaised():
            return [
                timer(
                    TimerKind.HELP_ESCALATION,
                    event.help_request_id,
                    event.sla_due_at,
                    event.sla_due_at,
                    session_id=event.session_id,
                    student_id=event.student_id,
                )
            ]
        case ev.HelpRequestResolved() | ev.HelpRequestCancelled() | ev.HelpRequestClosed():
            return [Cancel(centre, TimerKind.HELP_ESCALATION, event.help_request_id)]
        case ev.CatchUpAssigned():
            return reminder_and_overdue(
                TimerKind.CATCH_UP_REMINDER,
                TimerKind.CATCH_UP_OVERDUE,
                event.aggregate_id,
                event.due_at,
            )
        case ev.CatchUpCompleted() | ev.CatchUpCancelled():
            return [
                Cancel(centre, TimerKind.CATCH_UP_REMINDER, event.aggregate_id),
                Cancel(centre, TimerKind.CATCH_UP_OVERDUE, event.aggregate_id),
            ]
        case ev.HomeworkAssigned():
            return reminder_and_overdue(
                TimerKind.HOMEWORK_REMINDER,
                TimerKind.HOMEWORK_OVERDUE,
                event.aggregate_id,
                event.due_at,
            )
        case ev.HomeworkSubmitted():
            return [
                Cancel(centre, TimerKind.HOMEWORK_REMINDER, event.aggregate_id),
                Cancel(centre, TimerKind.HOMEWORK_OVERDUE, event.aggregate_id),
            ]
        case ev.CentreRemindersChanged():
            return [MoveSessionReminders(centre, event.session_reminder_minutes)]
    return []
