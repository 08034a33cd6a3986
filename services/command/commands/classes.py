"""Class cohorts: a teacher's group of students, and the sessions of the whole class."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import (
    Command,
    Location,
    MeetingLink,
    Reason,
    SessionCapacity,
    Text,
)
from shared.events import CLASS_CAPACITY, SessionMode

ClassCapacity = Annotated[int, msgspec.Meta(ge=CLASS_CAPACITY.low, le=CLASS_CAPACITY.high)]


class CreateClass(Command, frozen=True):
    name: Text
    subject: Text
    teacher_id: UUID
    capacity: ClassCapacity = 20


class UpdateClass(Command, frozen=True):
    class_id: UUID
    name: Text
    subject: Text
    teacher_id: UUID
    capacity: ClassCapacity = 20


class CancelClass(Command, frozen=True):
    class_id: UUID
    reason: Reason


class AddClassMember(Command, frozen=True):
    class_id: UUID
    student_id: UUID


class RemoveClassMember(Command, frozen=True):
    class_id: UUID
    student_id: UUID


class ScheduleClassSession(Command, frozen=True):
    class_id: UUID
    title: Text
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    time_zone: Text | None = None
    meeting_link: MeetingLink = None
    location: Location = None
    capacity: SessionCapacity = 5
