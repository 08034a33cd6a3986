"""The ``class`` and ``catch_up`` documents."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import CatchUpStatus, ClassStatus, MembershipStatus
from shared.readmodels.documents.base import Document, Instant, Record


class ClassMember(Record, kw_only=True):
    joined_at: Instant
    left_at: Instant | None = None
    status: MembershipStatus
    student_id: str


class ClassCohort(Document, kw_only=True):
    """One per class: its teacher, capacity, status and members."""

    cancel_reason: str | UnsetType = UNSET
    capacity: int
    centre_id: str
    class_id: str
    members: dict[str, ClassMember] = msgspec.field(default_factory=dict)
    name: str
    sessions: dict[str, Instant] | UnsetType = UNSET
    """The sessions scheduled for the class, by id, with their start."""
    status: ClassStatus = ClassStatus.ACTIVE
    subject: str
    teacher_id: str


class CatchUp(Document, kw_only=True):
    """One per catch-up package, shaped only by the catch-up's own events: the catch-up list
    joins its session's title and tutor when read."""

    assigned_at: Instant
    assigned_by: str
    cancel_reason: str | None = None
    cancelled_at: Instant | None = None
    catch_up_id: str
    completed_at: Instant | None = None
    due_at: Instant
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed while it was open
    (``CatchUpBecameOverdue``); it stays open and can still be completed."""
    reason: str
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``CatchUpReminderSent``)."""
    session_id: str
    started_at: Instant | None = None
    status: CatchUpStatus
    student_id: str
