"""The centre's catalogue of exercises, and exercise work in a live session."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, LongText, Reason, Ref, Text
from shared.events import EXERCISE_TIME_LIMIT_MINUTES, Difficulty, ExerciseType, Question

Answer = Annotated[str, msgspec.Meta(max_length=5000)]
Answers = Annotated[
    dict[Annotated[str, msgspec.Meta(min_length=1, max_length=40)], Answer],
    msgspec.Meta(max_length=100),
]
"""Answers by question id."""
Feedback = Annotated[str, msgspec.Meta(max_length=2000)]
Score = Annotated[float, msgspec.Meta(ge=0)]


class PublishExercise(Command, frozen=True, kw_only=True):
    title: Text
    course_id: Ref
    exercise_type: ExerciseType
    difficulty: Difficulty = Difficulty.MEDIUM
    questions: Annotated[list[Question], msgspec.Meta(min_length=1, max_length=100)]
    instructions: LongText | None = None
    time_limit_minutes: (
        Annotated[
            int,
            msgspec.Meta(ge=EXERCISE_TIME_LIMIT_MINUTES.low, le=EXERCISE_TIME_LIMIT_MINUTES.high),
        ]
        | None
    ) = None


class RetireExercise(Command, frozen=True):
    exercise_id: UUID
    reason: Reason


class AssignExercise(Command, frozen=True):
    """Set an exercise for some students of a live session, or for all of them, at once."""

    session_id: UUID
    exercise_id: UUID
    student_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=50)] | None = None
    """Omitted: every student enrolled in the session."""


class StartExercise(Command, frozen=True):
    session_id: UUID
    work_id: UUID


class ReportExerciseProgress(Command, frozen=True):
    session_id: UUID
    work_id: UUID
    percent: int


class SubmitExercise(Command, frozen=True):
    session_id: UUID
    work_id: UUID
    answers: Answers


class GradeExercise(Command, frozen=True):
    """A tutor marks handed-in work that has no answer key."""

    session_id: UUID
    work_id: UUID
    score: Score
    feedback: Feedback | None = None
