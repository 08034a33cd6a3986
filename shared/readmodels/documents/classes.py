"""The ``class`` and ``catch_up`` documents."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import CatchUpStatus, ClassStatus, MembershipStatus
from shared.readmodels.documents.base import Document, Instant, Record


class ClassMember(Record, kw_only=True):
    student_id: str
    status: MembershipStatus
    joined_at: Instant
    left_at: Instant | None = None


class ClassCohort(Document, kw_only=True):
    """One per class: its teacher, capacity, status and members."""

    class_id: str
    centre_id: str
    name: str
    subject: str
    teacher_id: str
    capacity: int
    status: ClassStatus = ClassStatus.ACTIVE
    members: dict[str, ClassMember] = msgspec.field(default_factory=dict)
    cancel_reason: str | UnsetType = UNSET
    sessions: dict[str, Instant] | UnsetType = UNSET
    """The sessions scheduled for the class, by id, with their start."""


class CatchUp(Document, kw_only=True):
    """One per catch-up package, shaped only by the catch-up's own events: the catch-up list
    joins its session's title and tutor when read."""

    catch_up_id: str
    session_id: str
    student_id: str
    reason: str
    due_at: Instant
    status: CatchUpStatus
    assigned_at: Instant
    assigned_by: str
    started_at: Instant | None = None
    completed_at: Instant | None = None
    cancelled_at: Instant | None = None
    cancel_reason: str | None = None
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``CatchUpReminderSent``)."""
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed while it was open
    (``CatchUpBecameOverdue``); it stays open and can still be completed."""
