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


class CatchUpReminderSent(SessionScopedEvent, frozen=True, kw_only=True):
    """The catch-up is due soon (at ``due_at``) and still open: the student and their parents
    are reminded. Recorded by the system. ``catch_up_id`` is the aggregate's id."""

    catch_up_id: UUID
    student_id: UUID
    due_at: datetime


class CatchUpBecameOverdue(SessionScopedEvent, frozen=True, kw_only=True):
    """The catch-up's due time passed while it was still open. Recorded by the system, at most
    once per due time; the catch-up stays open and can still be completed."""

    catch_up_id: UUID
    student_id: UUID
    due_at: datetime
