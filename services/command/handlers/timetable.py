"""A tutor's timetable follows their sessions: booked when scheduled, moved when moved, given
back when cancelled. An overlap never refuses; it is a warning in the answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

from services.command.domain.session import Session
from services.command.domain.timetable import (
    Overlap,
    TimetableWeek,
    TutorTimetable,
    timetable_week_id,
)
from services.command.unit_of_work import UnitOfWork
from shared.events import SessionStatus

Times = tuple[datetime, datetime]


def timetable(uow: UnitOfWork, tutor_id: UUID, *times: Times) -> TutorTimetable:
    """The weeks of the tutor's timetable that sessions at these (start, end) times touch."""

    def week_of(week: date) -> TimetableWeek:
        return uow.get_or_start(
            TimetableWeek,
            timetable_week_id(tutor_id, week),
            lambda: TimetableWeek.of(tutor_id, week, uow.actor.centre_id),
        )

    return TutorTimetable(tutor_id, [week_of(w) for w in TutorTimetable.weeks_needed(*times)])


def book(uow: UnitOfWork, sessions: Sequence[Session]) -> list[Overlap]:
    """Book new sessions of one tutor; the overlaps with their other sessions."""
    booked = timetable(uow, sessions[0].tutor_id, *((s.starts_at, s.ends_at) for s in sessions))
    return [overlap for session in sessions for overlap in booked.book(session, by=uow.actor)]


def follow(
    uow: UnitOfWork,
    session: Session,
    was: tuple[datetime, datetime, SessionStatus],
    *,
    rebook: bool = False,
) -> list[Overlap]:
    """Keep up with a verb the session just took (``was``: its start, end and status before):
    a cancelled session gives its time back, a moved one moves. ``rebook``: book it again
    even where it did not move, to tell its overlaps."""
    if session.status is SessionStatus.CANCELLED and was[2] is not SessionStatus.CANCELLED:
        timetable(uow, session.tutor_id, was[:2]).release(session, by=uow.actor)
        return []
    if rebook or (session.starts_at, session.ends_at) != was[:2]:
        moved = timetable(uow, session.tutor_id, was[:2], (session.starts_at, session.ends_at))
        return moved.book(session, by=uow.actor)
    return []
