"""A student's place in a session: attendance, presence, and whom the tutor is teaching."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, LongText, Part
from shared.events import AttendanceStatus, PresenceKind, TeachingMode


class AttendanceRecord(Part, frozen=True):
    student_id: UUID
    status: AttendanceStatus
    notes: LongText | None = None


class MarkAttendance(Command, frozen=True):
    """Several students of a session at once, atomically: all marks are stored or none."""

    session_id: UUID
    records: Annotated[list[AttendanceRecord], msgspec.Meta(min_length=1, max_length=50)]


class RecordPresence(Command, frozen=True):
    """A student's own client reports that they joined, left, dropped, came back, or are there."""

    session_id: UUID
    event: PresenceKind


class SwitchTeachingMode(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    mode: TeachingMode
