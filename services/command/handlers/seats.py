"""A student's place in a session: attendance, presence, and whom the tutor is teaching."""

from __future__ import annotations

from uuid import UUID

from services.command.commands.seats import MarkAttendance, RecordPresence, SwitchTeachingMode
from services.command.domain.aggregate import InvalidValue
from services.command.domain.attendance import AttendanceRecord, attendance_record_id
from services.command.domain.catch_up import CatchUp
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from services.command.handlers.common import seat, session_run_by
from services.command.responses import AttendanceRow, AttendanceView, PresenceView, TeachingView
from services.command.unit_of_work import UnitOfWork


def mark_attendance(command: MarkAttendance, uow: UnitOfWork) -> AttendanceView:
    """Mark several students at once, atomically: all marks are stored or none.

    A student newly marked ABSENT gets a catch-up package in the same commit; a mark that
    takes an absence back (EXCUSED, PRESENT or LATE) cancels that package. Each student's
    attendance record keeps the mark, in the same commit, and notices absences that repeat.
    """
    if not command.records:
        raise InvalidValue("give at least one record", field="records")
    seen: set[UUID] = set()
    for index, record in enumerate(command.records):
        if record.student_id in seen:
            raise InvalidValue("a student appears twice", field=f"records[{index}].student_id")
        seen.add(record.student_id)

    actor = uow.actor
    session = session_run_by(uow, command.session_id)
    rows: list[AttendanceRow] = []
    assigned: list[UUID] = []
    cancelled: list[UUID] = []
    for index, record in enumerate(command.records):
        if not session.is_enrolled(record.student_id):
            raise InvalidValue(
                "the student is not enrolled in this session", field=f"records[{index}].student_id"
            )
        marked = seat(uow, session, record.student_id)
        try:
            change = marked.mark_attendance(session, record.status, by=actor, notes=record.notes)
        except InvalidValue as error:
            raise InvalidValue(error.detail, field=f"records[{index}].{error.field}") from None
        rows.append(
            AttendanceRow(
                student_id=record.student_id, status=record.status, changed=change is not None
            )
        )
        if change is None:
            continue
        if change.opens_catch_up is not None:
            uow.add(
                CatchUp.assign_for_absence(
                    change.opens_catch_up, session, record.student_id, by=actor
                )
            )
            assigned.append(change.opens_catch_up)
        if change.closes_catch_up is not None:
            catch_up = uow.get(CatchUp, change.closes_catch_up)
            catch_up.cancel(by=actor, reason=f"attendance corrected to {record.status}")
            if catch_up.has_changes:
                cancelled.append(change.closes_catch_up)
        _attendance_record(uow, record.student_id).keep(session, record.status, by=actor)
    return AttendanceView(
        session_id=command.session_id,
        records=rows,
        catch_ups_assigned=assigned,
        catch_ups_cancelled=cancelled,
    )


def _attendance_record(uow: UnitOfWork, student_id: UUID) -> AttendanceRecord:
    return uow.get_or_start(
        AttendanceRecord,
        attendance_record_id(student_id),
        lambda: AttendanceRecord.of(student_id, uow.actor.centre_id),
    )


def _own_seat(uow: UnitOfWork, session_id: UUID) -> tuple[Session, Seat]:
    """The actor's (a student's) own seat in a session of their centre."""
    session = uow.find(Session, session_id)
    return session, seat(uow, session, uow.actor.user_id)


def record_presence(command: RecordPresence, uow: UnitOfWork) -> PresenceView:
    """A student's own client reports that they joined, left, dropped, came back, or are there."""
    session, own = _own_seat(uow, command.session_id)
    recorded = own.record_presence(session, command.event, by=uow.actor)
    return PresenceView(
        session_id=command.session_id,
        student_id=uow.actor.user_id,
        kind=command.event,
        recorded=recorded,
        active_seconds=own.active_seconds,
    )


def switch_teaching_mode(command: SwitchTeachingMode, uow: UnitOfWork) -> TeachingView:
    session = session_run_by(uow, command.session_id)
    taught = seat(uow, session, command.student_id)
    changed = taught.switch_teaching_mode(session, command.mode, by=uow.actor)
    return TeachingView(
        session_id=command.session_id,
        student_id=command.student_id,
        mode=command.mode,
        changed=changed,
        teaching_seconds=taught.teaching_seconds,
    )
