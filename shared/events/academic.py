"""A student's academic profile: per course, the grade they are in at school and the level the
centre teaches them at, every change of that level with its reason, and the content a tutor
assigned in place of the automatic sequence."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from shared.events.base import Event


class LevelChangeType(StrEnum):
    ASSESSMENT_RESULT = "ASSESSMENT_RESULT"
    TUTOR_OVERRIDE = "TUTOR_OVERRIDE"
    DIAGNOSTIC_TEST = "DIAGNOSTIC_TEST"
    LEVEL_ADVANCEMENT = "LEVEL_ADVANCEMENT"
    LEVEL_REGRESSION = "LEVEL_REGRESSION"


class SubjectAssessed(Event, frozen=True, kw_only=True):
    """Staff assessed the student in a course: the grade they are in at school and the level
    they work at here (0 is Kindergarten, 12 is Year 12). Its level change is an
    ASSESSMENT_RESULT; ``previous_working_level`` is ``None`` for a first assessment."""

    student_id: UUID
    course_id: str
    school_grade: int
    working_level: int
    previous_working_level: int | None = None
    notes: str | None = None

    aggregate_kind: ClassVar[str] = "academic"


class WorkingLevelChanged(Event, frozen=True, kw_only=True):
    """The level the student works at in an assessed course changed, for a stated reason."""

    student_id: UUID
    course_id: str
    previous_level: int
    new_level: int
    change_type: LevelChangeType
    reason: str

    aggregate_kind: ClassVar[str] = "academic"


class ContentAssigned(Event, frozen=True, kw_only=True):
    """A tutor chose the student's next lesson or exercise of a course, overriding the
    automatic sequence. At most one assignment per course is active: ``replaces`` names the
    active one this assignment supersedes."""

    student_id: UUID
    assignment_id: UUID
    course_id: str
    lesson_id: str | None = None
    exercise_id: str | None = None
    reason: str
    session_id: UUID | None = None
    replaces: UUID | None = None

    aggregate_kind: ClassVar[str] = "academic"


class ContentAssignmentWithdrawn(Event, frozen=True, kw_only=True):
    """The override was taken back; the course follows its automatic sequence again."""

    student_id: UUID
    assignment_id: UUID
    course_id: str
    reason: str

    aggregate_kind: ClassVar[str] = "academic"
