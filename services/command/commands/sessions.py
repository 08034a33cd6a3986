"""A session's life: scheduled, enrolled, run, moved, ended or cancelled."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import (
    Command,
    Location,
    LongText,
    MeetingLink,
    OptionalReason,
    Reason,
    Ref,
    SessionCapacity,
    Text,
)
from shared.events import EXTENSION_MINUTES, SessionMode


class ScheduleSession(Command, frozen=True):
    title: Text
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    tutor_id: UUID | None = None
    """Omitted: the caller (a TEACHER schedules only for themselves)."""
    time_zone: Text | None = None
    """Omitted: the centre's."""
    meeting_link: MeetingLink = None
    location: Location = None
    capacity: SessionCapacity = 5
    class_id: UUID | None = None


class StartSession(Command, frozen=True):
    session_id: UUID


class EndSession(Command, frozen=True):
    session_id: UUID


class CancelSession(Command, frozen=True):
    session_id: UUID
    reason: Reason
    catch_ups_due_at: datetime | None = None
    """When given, every enrolled student gets catch-up work due then, in the same commit."""


class RescheduleSession(Command, frozen=True):
    session_id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: OptionalReason = None


class ChangeSessionMode(Command, frozen=True):
    session_id: UUID
    mode: SessionMode
    meeting_link: MeetingLink = None
    location: Location = None


class ExtendSession(Command, frozen=True):
    session_id: UUID
    minutes: Annotated[int, msgspec.Meta(ge=EXTENSION_MINUTES.low, le=EXTENSION_MINUTES.high)] = 5


class EnrolStudent(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    course_id: Ref | None = None
    lesson_id: Ref | None = None


class RemoveStudent(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    reason: OptionalReason = None


class ChangeLesson(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    lesson_id: Ref
    course_id: Ref | None = None
    """Omitted: the student's course in the session."""
    reason: LongText | None = None
