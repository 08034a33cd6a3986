"""Homework: catalogue exercises set for a student, due at a time, marked by a tutor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, LongText, Text
from services.command.commands.exercises import Answers, Feedback, Score


class AssignHomework(Command, frozen=True):
    student_id: UUID
    title: Text
    exercise_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=20)]
    due_at: datetime
    session_id: UUID | None = None
    teacher_id: UUID | None = None
    """Who marks it. Omitted: the session's tutor, else whoever sets it."""
    notes: LongText | None = None


class StartHomework(Command, frozen=True):
    homework_id: UUID


class SubmitHomework(Command, frozen=True):
    homework_id: UUID
    answers: Annotated[dict[UUID, Answers], msgspec.Meta(max_length=20)]
    """Answers by exercise, each by question id."""


class GradeHomework(Command, frozen=True):
    homework_id: UUID
    score: Score
    feedback: Feedback | None = None
