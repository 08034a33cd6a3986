"""What a timer does when it fires (the scheduler issues these as SYSTEM). Each asks the
aggregate, which refuses, by recording nothing, what no longer applies."""

from __future__ import annotations

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
from services.command.domain.catch_up import CatchUp
from services.command.domain.homework import Homework
from services.command.domain.session import Session
from services.command.handlers.common import seat
from services.command.handlers.sessions import close_help_requests
from services.command.responses import TimerView
from services.command.unit_of_work import UnitOfWork
from shared.events import HelpRequestCloseReason


def send_session_reminder(command: SendSessionReminder, uow: UnitOfWork) -> TimerView:
    session = uow.find(Session, command.session_id)
    recorded = session.remind(
        by=uow.actor, starts_at=command.starts_at, minutes_before=command.minutes_before
    )
    return TimerView(recorded=recorded)


def complete_overdue_session(command: CompleteOverdueSession, uow: UnitOfWork) -> TimerView:
    """As a tutor's end: help requests still open are closed in the same commit."""
    session = uow.find(Session, command.session_id)
    recorded = session.complete_overdue(by=uow.actor, ends_at=command.ends_at)
    if recorded:
        close_help_requests(
            uow,
            session,
            [*session.roster, *session.removed_students],
            HelpRequestCloseReason.SESSION_ENDED,
        )
    return TimerView(recorded=recorded)


def send_attendance_reminder(command: SendAttendanceReminder, uow: UnitOfWork) -> TimerView:
    session = uow.find(Session, command.session_id)
    unmarked = [s for s in session.roster if seat(uow, session, s).attendance is None]
    return TimerView(recorded=session.remind_attendance(unmarked, by=uow.actor))


def escalate_help_request(command: EscalateHelpRequest, uow: UnitOfWork) -> TimerView:
    session = uow.find(Session, command.session_id)
    recorded = seat(uow, session, command.student_id).escalate_help_request(
        command.help_request_id, by=uow.actor, sla_due_at=command.sla_due_at
    )
    return TimerView(recorded=recorded)


def send_catch_up_reminder(command: SendCatchUpReminder, uow: UnitOfWork) -> TimerView:
    catch_up = uow.find(CatchUp, command.catch_up_id)
    return TimerView(recorded=catch_up.remind(by=uow.actor, due_at=command.due_at))


def mark_catch_up_overdue(command: MarkCatchUpOverdue, uow: UnitOfWork) -> TimerView:
    catch_up = uow.find(CatchUp, command.catch_up_id)
    return TimerView(recorded=catch_up.become_overdue(by=uow.actor, due_at=command.due_at))


def send_homework_reminder(command: SendHomeworkReminder, uow: UnitOfWork) -> TimerView:
    homework = uow.find(Homework, command.homework_id)
    return TimerView(recorded=homework.remind(by=uow.actor, due_at=command.due_at))


def mark_homework_overdue(command: MarkHomeworkOverdue, uow: UnitOfWork) -> TimerView:
    homework = uow.find(Homework, command.homework_id)
    return TimerView(recorded=homework.become_overdue(by=uow.actor, due_at=command.due_at))
