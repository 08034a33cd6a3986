"""Events of a catch-up package: the work a student does to make up a missed session."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.events.base import SessionScopedEvent


class CatchUpStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class CatchUpAssigned(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    due_at: datetime
    reason: str


class CatchUpCancelled(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    reason: str


class CatchUpStarted(SessionScopedEvent, frozen=True, kw_only=True):
    """The student has begun the catch-up work (PENDING → IN_PROGRESS)."""

    student_id: UUID


class CatchUpCompleted(SessionScopedEvent, frozen=True, kw_only=True):
    """The catch-up work is done (PENDING or IN_PROGRESS → COMPLETED)."""

    student_id: UUID
