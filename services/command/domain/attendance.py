"""A student's attendance record: their latest marks across sessions, to notice repeated
absences where one aggregate can decide it.

Whether an absence is one of several in a row depends on the student's marks in other
sessions, which the read side learns in no fixed order (each session is its own partition).
So the seat's mark is also kept here, in the same commit, and the record decides: an absence
that makes the student's latest marked sessions two or more absences in a row, this one among
them, is noticed (:class:`~shared.events.RepeatedAbsencesNoticed`), once per session. Two
sessions marking one student at the same moment conflict on the record's version, and the
retried one sees the other's mark.

The record keeps the latest :data:`~shared.events.ATTENDANCE_RECORD_SESSIONS` marked sessions
by start. A new mark for a session older than all of them, once the record is full, cannot
change the latest marks and is not kept. Marks recorded before the record existed are not in
it: a student's streak starts at their first mark after it.
"""

from __future__ import annotations

import itertools
from uuid import UUID, uuid5

from services.command.domain.aggregate import Aggregate, applies
from services.command.domain.session import Session
from shared.events import (
    ATTENDANCE_RECORD_SESSIONS,
    AttendanceStatus,
    RepeatedAbsencesNoticed,
    SessionMark,
    StudentAttendanceRecorded,
)
from shared.tenancy import Actor

REPEATED_ABSENCES = 2
"""Absences in a row, among a student's latest marked sessions, that are noticed."""


def attendance_record_id(student_id: UUID) -> UUID:
    return uuid5(student_id, "attendance")


def _newest_first(mark: SessionMark) -> tuple[float, str]:
    return (-mark.starts_at.timestamp(), str(mark.session_id))


class AttendanceRecord(Aggregate):
    """One student's latest marks by session, and the sessions whose absence was noticed."""

    student_id: UUID
    marks: dict[UUID, SessionMark]
    noticed: set[UUID]

    @classmethod
    def of(cls, student_id: UUID, centre_id: str) -> AttendanceRecord:
        """The record as it is before anything is kept in it."""
        record = cls(attendance_record_id(student_id), centre_id)
        record.student_id = student_id
        return record

    def keep(self, session: Session, status: AttendanceStatus, *, by: Actor) -> int:
        """Keep the student's mark in ``session``; the absences in a row it makes, if it was
        noticed as repeated (0 when nothing is noticed)."""
        mark = SessionMark(
            session_id=session.id, title=session.title, starts_at=session.starts_at, status=status
        )
        current = self.marks.get(session.id)
        if current is not None and (current.status, current.starts_at) == (
            status,
            session.starts_at,
        ):
            return 0
        if current is None and self._too_old(mark):
            return 0
        self._record(StudentAttendanceRecorded, by, student_id=self.student_id, mark=mark)
        streak = self.absences_in_a_row()
        if (
            len(streak) < REPEATED_ABSENCES
            or session.id in self.noticed
            or all(m.session_id != session.id for m in streak)
        ):
            return 0
        self._record(
            RepeatedAbsencesNoticed,
            by,
            student_id=self.student_id,
            session_id=session.id,
            absences_in_a_row=len(streak),
            sessions=tuple(streak),
        )
        return len(streak)

    def latest(self) -> list[SessionMark]:
        """The marks kept, newest session first."""
        return sorted(self.marks.values(), key=_newest_first)

    def absences_in_a_row(self) -> list[SessionMark]:
        """The latest marked sessions, newest first, as long as each was an absence."""
        return list(
            itertools.takewhile(lambda m: m.status is AttendanceStatus.ABSENT, self.latest())
        )

    def _too_old(self, mark: SessionMark) -> bool:
        if len(self.marks) < ATTENDANCE_RECORD_SESSIONS:
            return False
        return _newest_first(mark) > _newest_first(self.latest()[-1])

    def _blank(self) -> None:
        self.marks = {}
        self.noticed = set()

    @applies(StudentAttendanceRecorded)
    def _recorded(self, event: StudentAttendanceRecorded) -> None:
        self.student_id = event.student_id
        self.marks[event.mark.session_id] = event.mark
        for dropped in self.latest()[ATTENDANCE_RECORD_SESSIONS:]:
            del self.marks[dropped.session_id]
            self.noticed.discard(dropped.session_id)

    @applies(RepeatedAbsencesNoticed)
    def _noticed(self, event: RepeatedAbsencesNoticed) -> None:
        self.noticed.add(event.session_id)
