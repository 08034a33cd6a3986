"""Class cohorts: a group of students who meet with one teacher."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from shared.events.base import Event


class ClassEvent(Event, frozen=True, kw_only=True):
    aggregate_kind: ClassVar[str] = "class"
    is_abstract: ClassVar[bool] = True


class ClassCreated(ClassEvent, frozen=True, kw_only=True):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int = 20


class ClassUpdated(ClassEvent, frozen=True, kw_only=True):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int


class ClassCancelled(ClassEvent, frozen=True, kw_only=True):
    reason: str


class ClassMemberAdded(ClassEvent, frozen=True, kw_only=True):
    student_id: UUID


class ClassMemberRemoved(ClassEvent, frozen=True, kw_only=True):
    student_id: UUID


class WeeklyRule(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Sessions on some weekdays at one local time, for a number of weeks."""

    days_of_week: list[int]
    """ISO weekdays: 1 = Monday … 7 = Sunday."""
    start_time: str
    """Local time of day, ``HH:MM``, in ``time_zone``."""
    duration_minutes: int
    first_date: date
    weeks: int
    time_zone: str


class ClassSessionsScheduled(ClassEvent, frozen=True, kw_only=True):
    """Sessions were scheduled for the class (one, or all those of a weekly rule)."""

    session_ids: list[UUID]
    starts: list[datetime]
    rule: WeeklyRule | None = None
