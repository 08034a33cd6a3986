"""Exercises: the centre's catalogue, and a student's work on an exercise during a session."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

import msgspec

from shared.events.base import Event, SessionScopedEvent


class ExerciseType(StrEnum):
    MULTIPLE_CHOICE = "MULTIPLE_CHOICE"
    FILL_IN_BLANK = "FILL_IN_BLANK"
    NUMERICAL = "NUMERICAL"
    SHORT_ANSWER = "SHORT_ANSWER"
    LONG_ANSWER = "LONG_ANSWER"
    MATCHING = "MATCHING"
    WORKSHEET = "WORKSHEET"


AUTO_GRADABLE_TYPES = frozenset(
    {ExerciseType.MULTIPLE_CHOICE, ExerciseType.FILL_IN_BLANK, ExerciseType.NUMERICAL}
)


class Difficulty(StrEnum):
    EASY = "EASY"
    MEDIUM = "MEDIUM"
    HARD = "HARD"
    CHALLENGE = "CHALLENGE"


class Question(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True
):
    """One question. ``accepted_answers`` is the answer key: with one, the question is marked
    automatically (for the auto-gradable exercise types); without, a tutor marks it."""

    question_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    points: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    options: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=500)], ...] = ()
    accepted_answers: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=500)], ...] = ()
    tolerance: Annotated[float, msgspec.Meta(ge=0)] | None = None


def max_score_of(questions: Sequence[Question]) -> int:
    return sum(q.points for q in questions)


def is_auto_gradable(exercise_type: ExerciseType, questions: Sequence[Question]) -> bool:
    """Marked from its answer key: a type that can be, and a key for every question."""
    return exercise_type in AUTO_GRADABLE_TYPES and all(q.accepted_answers for q in questions)


class WorkStatus(StrEnum):
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    SUBMITTED = "SUBMITTED"
    """Handed in; a tutor marks it."""
    AUTO_GRADED = "AUTO_GRADED"
    GRADED = "GRADED"


class ExercisePublished(Event, frozen=True, kw_only=True):
    """An exercise joins the centre's catalogue. Its answer key is in the questions."""

    title: str
    course_id: str
    exercise_type: ExerciseType
    difficulty: Difficulty
    questions: tuple[Question, ...]
    instructions: str | None = None
    time_limit_minutes: int | None = None

    aggregate_kind: ClassVar[str] = "exercise"

    @property
    def max_score(self) -> int:
        return max_score_of(self.questions)

    @property
    def auto_gradable(self) -> bool:
        return is_auto_gradable(self.exercise_type, self.questions)


class ExerciseRetired(Event, frozen=True, kw_only=True):
    """The exercise can no longer be assigned; work already set on it goes on."""

    reason: str

    aggregate_kind: ClassVar[str] = "exercise"


class ExerciseAssigned(SessionScopedEvent, frozen=True, kw_only=True):
    """The tutor set an exercise for a student during a session."""

    student_id: UUID
    work_id: UUID
    exercise_id: UUID
    title: str
    exercise_type: ExerciseType
    difficulty: Difficulty
    max_score: int
    auto_gradable: bool


class ExerciseStarted(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    work_id: UUID


class ExerciseProgressReported(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    work_id: UUID
    percent: int


class ExerciseSubmitted(SessionScopedEvent, frozen=True, kw_only=True):
    """The student handed in their answers. For an exercise with an answer key the mark is
    already known (``status`` AUTO_GRADED, ``score`` and the XP earned); otherwise it is
    SUBMITTED and waits for a tutor."""

    student_id: UUID
    work_id: UUID
    answers: dict[str, str]
    status: WorkStatus
    max_score: int
    score: float | None = None
    xp_awarded: int = 0
    paper_upload_id: UUID | None = None
    """Handed in on paper: the upload that carries it (its answers are on the pages)."""


class ExerciseGraded(SessionScopedEvent, frozen=True, kw_only=True):
    """A tutor marked handed-in work, with feedback, and the XP it earned."""

    student_id: UUID
    work_id: UUID
    score: float
    max_score: int
    feedback: str | None = None
    xp_awarded: int = 0
