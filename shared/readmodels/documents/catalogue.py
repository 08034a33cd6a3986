"""The ``exercise`` and ``homework`` documents."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import Difficulty, ExerciseType, HomeworkStatus
from shared.readmodels.documents.base import Document, Instant, Record


class ExerciseQuestion(Record, kw_only=True):
    question_id: str
    prompt: str
    points: int = 1
    options: list[str] = msgspec.field(default_factory=list)
    accepted_answers: list[str] = msgspec.field(default_factory=list)
    """The answer key (hidden from students)."""
    tolerance: float | None = None
    """Also part of the answer key."""


class Exercise(Document, kw_only=True):
    """One per catalogue exercise."""

    exercise_id: str
    title: str
    course_id: str
    exercise_type: ExerciseType
    difficulty: Difficulty
    instructions: str | None = None
    time_limit_minutes: int | None = None
    questions: list[ExerciseQuestion]
    max_score: int
    auto_gradable: bool
    published_at: Instant
    published_by: str
    retired: bool = False
    retired_at: Instant | UnsetType = UNSET
    retire_reason: str | UnsetType = UNSET


class Homework(Document, kw_only=True):
    """One per homework: what was set, for whom, by when, the answers and the mark."""

    homework_id: str
    student_id: str
    teacher_id: str
    title: str
    exercise_ids: list[str]
    max_score: int
    due_at: Instant
    session_id: str | None = None
    notes: str | None = None
    status: HomeworkStatus
    assigned_at: Instant
    assigned_by: str
    started_at: Instant | None = None
    submitted_at: Instant | None = None
    on_time: bool | None = None
    answers: dict[str, dict[str, str]] | None = None
    """Per exercise, per question."""
    auto_score: float | None = None
    score: float | None = None
    feedback: str | None = None
    graded_at: Instant | None = None
    graded_by: str | UnsetType = UNSET
    xp_awarded: int = 0
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``HomeworkDueReminderSent``)."""
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed before it was handed in
    (``HomeworkBecameOverdue``); it can still be handed in, late."""
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it (its answers are on the pages)."""
