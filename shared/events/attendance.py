"""A student's attendance record: their latest marks across sessions, to notice absences that
repeat on the write side (one aggregate per student, ordered by itself)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final
from uuid import UUID

import msgspec

from shared.events.base import Event
from shared.events.seats import AttendanceStatus

ATTENDANCE_RECORD_SESSIONS: Final = 12
"""The latest marked sessions (by start) a student's attendance record keeps: absences in a
row are counted among them, so a longer run is reported as this many."""


class SessionMark(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A student's mark in one session, with what the session was when it was marked."""

    session_id: UUID
    title: str
    starts_at: datetime
    status: AttendanceStatus


class AttendanceRecordEvent(Event, frozen=True, kw_only=True):
    aggregate_kind: ClassVar[str] = "attendance"
    is_abstract: ClassVar[bool] = True


class StudentAttendanceRecorded(AttendanceRecordEvent, frozen=True, kw_only=True):
    """A mark (new, or a different status) kept in the student's attendance record. Recorded
    with the seat's ``AttendanceMarked``, in the same commit."""

    student_id: UUID
    mark: SessionMark


class RepeatedAbsencesNoticed(AttendanceRecordEvent, frozen=True, kw_only=True):
    """An absence made the student's latest marked sessions ``absences_in_a_row`` absences in
    a row (two or more), this one (``session_id``) among them. Recorded at most once per
    session, however often its mark is corrected and made again."""

    student_id: UUID
    session_id: UUID
    absences_in_a_row: int
    sessions: tuple[SessionMark, ...]
    """The absences in a row, newest first."""
