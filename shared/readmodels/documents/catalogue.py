"""The ``exercise`` and ``homework`` documents."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import Difficulty, ExerciseType, HomeworkStatus
from shared.readmodels.documents.base import Document, Instant, Record


class ExerciseQuestion(Record, kw_only=True):
    accepted_answers: list[str] = msgspec.field(default_factory=list)
    """The answer key (hidden from students)."""
    options: list[str] = msgspec.field(default_factory=list)
    points: int = 1
    prompt: str
    question_id: str
    tolerance: float | None = None
    """Also part of the answer key."""


class Exercise(Document, kw_only=True):
    """One per catalogue exercise."""

    auto_gradable: bool
    course_id: str
    difficulty: Difficulty
    exercise_id: str
    exercise_type: ExerciseType
    instructions: str | None = None
    max_score: int
    published_at: Instant
    published_by: str
    questions: list[ExerciseQuestion]
    retire_reason: str | UnsetType = UNSET
    retired: bool = False
    retired_at: Instant | UnsetType = UNSET
    time_limit_minutes: int | None = None
    title: str


class Homework(Document, kw_only=True):
    """One per homework: what was set, for whom, by when, the answers and the mark."""

    answers: dict[str, dict[str, str]] | None = None
    """Per exercise, per question."""
    assigned_at: Instant
    assigned_by: str
    auto_score: float | None = None
    due_at: Instant
    exercise_ids: list[str]
    feedback: str | None = None
    graded_at: Instant | None = None
    graded_by: str | UnsetType = UNSET
    homework_id: str
    max_score: int
    notes: str | None = None
    on_time: bool | None = None
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed before it was handed in
    (``HomeworkBecameOverdue``); it can still be handed in, late."""
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it (its answers are on the pages)."""
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``HomeworkDueReminderSent``)."""
    score: float | None = None
    session_id: str | None = None
    started_at: Instant | None = None
    status: HomeworkStatus
    student_id: str
    submitted_at: Instant | None = None
    teacher_id: str
    title: str
    xp_awarded: int = 0
