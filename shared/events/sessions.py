"""Events of a tutoring session's schedule, life cycle and roster."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.events.base import SessionScopedEvent


class SessionMode(StrEnum):
    ONLINE = "ONLINE"
    PHYSICAL = "PHYSICAL"
    HYBRID = "HYBRID"


class SessionStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class SessionScheduled(SessionScopedEvent, frozen=True, kw_only=True):
    title: str
    tutor_id: UUID
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    mode: SessionMode
    meeting_link: str | None = None
    location: str | None = None
    capacity: int = 5
    class_id: UUID | None = None


class SessionStarted(SessionScopedEvent, frozen=True, kw_only=True):
    pass


class SessionEnded(SessionScopedEvent, frozen=True, kw_only=True):
    pass


class SessionCancelled(SessionScopedEvent, frozen=True, kw_only=True):
    reason: str


class StudentEnrolled(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    course_id: str | None = None
    lesson_id: str | None = None


class StudentRemoved(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    reason: str | None = None


class SessionRescheduled(SessionScopedEvent, frozen=True, kw_only=True):
    starts_at: datetime
    ends_at: datetime
    reason: str | None = None


class SessionModeChanged(SessionScopedEvent, frozen=True, kw_only=True):
    mode: SessionMode
    meeting_link: str | None = None
    location: str | None = None


class SessionExtended(SessionScopedEvent, frozen=True, kw_only=True):
    """A live session runs longer than planned."""

    minutes: int
    ends_at: datetime


class StudentLessonChanged(SessionScopedEvent, frozen=True, kw_only=True):
    """The tutor moved an enrolled student to another lesson (and maybe course) while the
    session is SCHEDULED or LIVE. ``assignment_id`` names the content assignment that asked
    for it, if one did."""

    student_id: UUID
    course_id: str | None
    lesson_id: str
    previous_course_id: str | None = None
    previous_lesson_id: str | None = None
    reason: str | None = None
    assignment_id: UUID | None = None


class SessionReminderSent(SessionScopedEvent, frozen=True, kw_only=True):
    """The session starts in ``minutes_before`` minutes (at ``starts_at``): its tutor, students
    and their parents are reminded. Recorded by the system when the reminder timer fires."""

    starts_at: datetime
    minutes_before: int


class AttendanceReminderSent(SessionScopedEvent, frozen=True, kw_only=True):
    """The session ended a while ago and these enrolled students have no attendance mark yet:
    the tutor is reminded to mark them. Recorded by the system."""

    unmarked_student_ids: list[UUID]
