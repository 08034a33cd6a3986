"""Homework: exercises a student does at home by a due time, marked by their tutor."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from shared.events.base import Event


class HomeworkStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUBMITTED = "SUBMITTED"
    """Handed in; some answers wait for the tutor."""
    AUTO_GRADED = "AUTO_GRADED"
    """Handed in and marked from the answer keys; the tutor may still grade it with feedback."""
    GRADED = "GRADED"


class HomeworkAssigned(Event, frozen=True, kw_only=True):
    """``teacher_id`` marks it: the session's tutor, or whoever assigned it."""

    student_id: UUID
    teacher_id: UUID
    title: str
    exercise_ids: tuple[UUID, ...]
    max_score: int
    due_at: datetime
    session_id: UUID | None = None
    notes: str | None = None

    aggregate_kind: ClassVar[str] = "homework"


class HomeworkStarted(Event, frozen=True, kw_only=True):
    student_id: UUID

    aggregate_kind: ClassVar[str] = "homework"


class HomeworkSubmitted(Event, frozen=True, kw_only=True):
    """The student handed it in: their answers per exercise and question, whether on time,
    the mark from the answer keys where every answer has one, and the XP earned."""

    student_id: UUID
    teacher_id: UUID
    answers: dict[str, dict[str, str]]
    on_time: bool
    status: HomeworkStatus
    max_score: int
    auto_score: float | None = None
    xp_awarded: int = 0
    paper_upload_id: UUID | None = None
    """Handed in on paper: the upload that carries it (its answers are on the pages)."""

    aggregate_kind: ClassVar[str] = "homework"


class HomeworkGraded(Event, frozen=True, kw_only=True):
    student_id: UUID
    teacher_id: UUID
    score: float
    max_score: int
    feedback: str | None = None

    aggregate_kind: ClassVar[str] = "homework"


class HomeworkDueReminderSent(Event, frozen=True, kw_only=True):
    """The homework is due soon (at ``due_at``) and not handed in: the student and their
    parents are reminded. Recorded by the system. ``homework_id`` is the aggregate's id."""

    homework_id: UUID
    student_id: UUID
    due_at: datetime

    aggregate_kind: ClassVar[str] = "homework"


class HomeworkBecameOverdue(Event, frozen=True, kw_only=True):
    """The homework's due time passed before it was handed in. Recorded by the system, once;
    it can still be handed in (late)."""

    homework_id: UUID
    student_id: UUID
    due_at: datetime

    aggregate_kind: ClassVar[str] = "homework"
