"""A session's life: scheduled, enrolled, run, moved, ended or cancelled."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID, uuid4

import msgspec

from services.command.commands.sessions import (
    CancelSession,
    ChangeLesson,
    ChangeSessionMode,
    EndSession,
    EnrolStudent,
    ExtendSession,
    RemoveStudent,
    RescheduleSession,
    ScheduleSession,
    StartSession,
)
from services.command.domain.catch_up import CatchUp
from services.command.domain.session import Session
from services.command.handlers import timetable
from services.command.handlers.common import seat, session_run_by, student, tutor
from services.command.responses import EnrolmentView, SessionView
from services.command.unit_of_work import UnitOfWork
from shared.events import HelpRequestCloseReason
from shared.tenancy import Forbidden


def schedule_session(command: ScheduleSession, uow: UnitOfWork) -> SessionView:
    actor = uow.actor
    tutor_id = command.tutor_id or actor.user_id
    if actor.is_teacher_other_than(tutor_id):
        raise Forbidden("a TEACHER schedules sessions only for themselves")
    centre = uow.centre()
    tutor(uow, tutor_id, field="tutor_id")
    session = Session.schedule(
        uuid4(),
        by=actor,
        tutor_id=tutor_id,
        title=command.title,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        time_zone=command.time_zone or centre.time_zone,
        mode=command.mode,
        meeting_link=command.meeting_link,
        location=command.location,
        capacity=command.capacity,
        class_id=command.class_id,
        longest=centre.longest_session,
    )
    uow.add(session)
    return SessionView.of(session, warnings=timetable.book(uow, [session]))


def _take(
    uow: UnitOfWork, session_id: UUID, verb: Callable[[Session], None], *, warns: bool = False
) -> SessionView:
    """A verb of the session's own; its tutor's timetable follows. ``warns``: the verb may
    move the session, and the answer tells its overlaps."""
    session = session_run_by(uow, session_id)
    was = (session.starts_at, session.ends_at, session.status)
    verb(session)
    overlaps = timetable.follow(uow, session, was, rebook=warns)
    return SessionView.of(session, warnings=overlaps if warns else None)


def start_session(command: StartSession, uow: UnitOfWork) -> SessionView:
    return _take(uow, command.session_id, lambda s: s.start(by=uow.actor))


def cancel_session(command: CancelSession, uow: UnitOfWork) -> SessionView:
    """Cancelled, with catch-up work for every enrolled student when asked for (the students
    and their parents are told by the notifications of ``SessionCancelled``)."""
    view = _take(uow, command.session_id, lambda s: s.cancel(by=uow.actor, reason=command.reason))
    if command.catch_ups_due_at is None:
        return view
    session = uow.find(Session, command.session_id)
    assigned: list[UUID] = []
    for student_id in sorted(session.roster):
        catch_up = CatchUp.assign_for_cancellation(
            session, student_id, by=uow.actor, due_at=command.catch_ups_due_at
        )
        uow.add(catch_up)
        assigned.append(catch_up.id)
    return msgspec.structs.replace(view, catch_ups_assigned=assigned)


def change_session_mode(command: ChangeSessionMode, uow: UnitOfWork) -> SessionView:
    return _take(
        uow,
        command.session_id,
        lambda s: s.change_mode(
            by=uow.actor,
            mode=command.mode,
            meeting_link=command.meeting_link,
            location=command.location,
        ),
    )


def reschedule_session(command: RescheduleSession, uow: UnitOfWork) -> SessionView:
    return _take(
        uow,
        command.session_id,
        lambda s: s.reschedule(
            by=uow.actor,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            reason=command.reason,
            longest=uow.centre().longest_session,
        ),
        warns=True,
    )


def extend_session(command: ExtendSession, uow: UnitOfWork) -> SessionView:
    return _take(
        uow,
        command.session_id,
        lambda s: s.extend(
            by=uow.actor, minutes=command.minutes, longest=uow.centre().longest_session
        ),
        warns=True,
    )


def end_session(command: EndSession, uow: UnitOfWork) -> SessionView:
    """LIVE → COMPLETED; help requests still open are closed in the same commit (nobody can
    answer them any more), so they never wait for ever."""
    session = session_run_by(uow, command.session_id)
    session.end(by=uow.actor)
    closed = close_help_requests(
        uow,
        session,
        [*session.roster, *session.removed_students],
        HelpRequestCloseReason.SESSION_ENDED,
    )
    return SessionView.of(session, help_requests_closed=closed)


def close_help_requests(
    uow: UnitOfWork, session: Session, students: Iterable[UUID], reason: HelpRequestCloseReason
) -> list[UUID]:
    """Close the open help request of each of ``students`` in the session, if they have one;
    the requests closed."""
    closed = []
    for student_id in sorted(students):
        request_id = seat(uow, session, student_id).close_open_help_request(reason, by=uow.actor)
        if request_id is not None:
            closed.append(request_id)
    return closed


def enrol_student(command: EnrolStudent, uow: UnitOfWork) -> SessionView:
    session = session_run_by(uow, command.session_id)
    student(uow, command.student_id, field="student_id", refusal="only a STUDENT can be enrolled")
    session.enrol(
        command.student_id, by=uow.actor, course_id=command.course_id, lesson_id=command.lesson_id
    )
    return SessionView.of(session)


def remove_student(command: RemoveStudent, uow: UnitOfWork) -> SessionView:
    session = session_run_by(uow, command.session_id)
    session.remove(command.student_id, by=uow.actor, reason=command.reason)
    close_help_requests(uow, session, [command.student_id], HelpRequestCloseReason.STUDENT_REMOVED)
    return SessionView.of(session)


def change_lesson(command: ChangeLesson, uow: UnitOfWork) -> EnrolmentView:
    """Move an enrolled student to another lesson (of another course, if named) while the
    session is SCHEDULED or LIVE: the Control Center shows it at once."""
    session = session_run_by(uow, command.session_id)
    changed = session.change_lesson(
        command.student_id,
        by=uow.actor,
        lesson_id=command.lesson_id,
        course_id=command.course_id,
        reason=command.reason,
    )
    course_id, lesson_id = session.lesson_of(command.student_id)
    return EnrolmentView(
        session_id=session.id,
        student_id=command.student_id,
        course_id=course_id,
        lesson_id=lesson_id,
        changed=changed,
    )
