"""Events of a catch-up package: the work a student does to make up a missed session."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.events.base import SessionScopedEvent


class CatchUpAssigned(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    due_at: datetime
    reason: str


class CatchUpCancelled(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    reason: str
