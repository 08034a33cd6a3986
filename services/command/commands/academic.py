"""A student's academic profile: the level they work at in each course, and content chosen
for them over the automatic sequence."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, LongText, Ref
from shared.events import LevelChangeType

Level = Annotated[int, msgspec.Meta(ge=0, le=12, description="0 is Kindergarten, 12 is Year 12")]
LongReason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class AssessSubject(Command, frozen=True):
    """Record the grade a student is in at school and the level they work at in a course."""

    student_id: UUID
    course_id: Ref
    school_grade: Level
    working_level: Level
    notes: LongText | None = None


class ChangeWorkingLevel(Command, frozen=True):
    student_id: UUID
    course_id: Ref
    level: Level
    change_type: LevelChangeType
    reason: LongReason


class AssignContent(Command, frozen=True):
    """Override the automatic content sequence of a course for one student."""

    student_id: UUID
    course_id: Ref
    reason: LongReason
    lesson_id: Ref | None = None
    exercise_id: Ref | None = None
    session_id: UUID | None = None


class WithdrawContentAssignment(Command, frozen=True):
    student_id: UUID
    assignment_id: UUID
    reason: LongReason
