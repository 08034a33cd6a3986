"""Weekly rules: a tutor's series of sessions, and a class's."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import (
    Command,
    Location,
    MeetingLink,
    Part,
    Reason,
    Ref,
    SessionCapacity,
    Text,
)
from shared.events import SERIES_WEEKS, SESSION_MINUTES, SessionMode

DayOfWeek = Annotated[int, msgspec.Meta(ge=1, le=7)]


class WeeklyRuleCommand(Command, frozen=True, kw_only=True):
    """Sessions every week on some days at one time, each with the same title, mode and place."""

    days_of_week: Annotated[list[DayOfWeek], msgspec.Meta(min_length=1, max_length=7)]
    start_time: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    duration_minutes: Annotated[
        int,
        msgspec.Meta(
            ge=SESSION_MINUTES.low,
            le=SESSION_MINUTES.high,
            description="at most the centre's longest session (12 hours unless it says otherwise)",
        ),
    ] = 60
    first_date: date
    weeks: Annotated[int, msgspec.Meta(ge=SERIES_WEEKS.low, le=SERIES_WEEKS.high)] = 12
    time_zone: Text | None = None
    """Omitted: the centre's."""
    title: Text
    mode: SessionMode
    meeting_link: MeetingLink = None
    location: Location = None
    capacity: SessionCapacity = 5


class SeriesStudent(Part, frozen=True):
    """A student enrolled in every session of a series, on their own course and lesson."""

    student_id: UUID
    course_id: Ref | None = None
    lesson_id: Ref | None = None


class ScheduleSeries(WeeklyRuleCommand, frozen=True, kw_only=True):
    tutor_id: UUID | None = None
    """Omitted: the caller."""
    students: Annotated[list[SeriesStudent], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )


class CancelSeries(Command, frozen=True):
    series_id: UUID
    reason: Reason


class ScheduleClassRule(WeeklyRuleCommand, frozen=True, kw_only=True):
    class_id: UUID
