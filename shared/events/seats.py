"""Events of one student's seat in one session: attendance and help requests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.events.base import SessionScopedEvent


class AttendanceStatus(StrEnum):
    PRESENT = "PRESENT"
    LATE = "LATE"
    ABSENT = "ABSENT"
    EXCUSED = "EXCUSED"


class HelpPriority(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


class AttendanceMarked(SessionScopedEvent, frozen=True, kw_only=True):
    """A mark, or a correction of an earlier mark: the previous status is kept alongside."""

    student_id: UUID
    status: AttendanceStatus
    previous_status: AttendanceStatus | None = None
    notes: str | None = None


class HelpRequestRaised(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    help_request_id: UUID
    priority: HelpPriority
    sla_due_at: datetime
    exercise_id: str | None = None
    message: str | None = None


class HelpRequestStatus(StrEnum):
    PENDING = "PENDING"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CANCELLED = "CANCELLED"
    CLOSED = "CLOSED"
    """Closed without the tutor resolving it: the session ended, or the student left it."""


class HelpRequestAcknowledged(SessionScopedEvent, frozen=True, kw_only=True):
    """The tutor has seen the request and will come to the student."""

    student_id: UUID
    help_request_id: UUID


class HelpRequestStarted(SessionScopedEvent, frozen=True, kw_only=True):
    """The tutor is helping the student now."""

    student_id: UUID
    help_request_id: UUID


class HelpRequestResolved(SessionScopedEvent, frozen=True, kw_only=True):
    student_id: UUID
    help_request_id: UUID
    response: str


class HelpRequestCancelled(SessionScopedEvent, frozen=True, kw_only=True):
    """The student withdrew the request."""

    student_id: UUID
    help_request_id: UUID


class HelpRequestCloseReason(StrEnum):
    SESSION_ENDED = "SESSION_ENDED"
    STUDENT_REMOVED = "STUDENT_REMOVED"


class HelpRequestClosed(SessionScopedEvent, frozen=True, kw_only=True):
    """A request still open was closed because nobody can answer it any more: the session
    ended, or the student was removed from it. Recorded in the same commit as that end or
    removal; it is neither resolved by the tutor nor withdrawn by the student."""

    student_id: UUID
    help_request_id: UUID
    reason: HelpRequestCloseReason


class HelpRequestEscalated(SessionScopedEvent, frozen=True, kw_only=True):
    """A help request was still open when its SLA ran out (``sla_due_at``): the centre's
    supervisors are told. Recorded by the system, at most once per request; the request stays
    open for the tutor to answer."""

    student_id: UUID
    help_request_id: UUID
    priority: HelpPriority
    sla_due_at: datetime


class PresenceKind(StrEnum):
    JOIN = "JOIN"
    LEAVE = "LEAVE"
    HEARTBEAT = "HEARTBEAT"
    DISCONNECT = "DISCONNECT"
    RECONNECT = "RECONNECT"


class TeachingMode(StrEnum):
    TEACH = "TEACH"
    OBSERVE = "OBSERVE"


class StudentPresenceRecorded(SessionScopedEvent, frozen=True, kw_only=True):
    """A student joined, left, lost or regained their connection, or is still there.

    ``active_seconds`` is their total active time in the session so far: time between two
    presence signals counts when the gap is under two minutes.
    """

    student_id: UUID
    kind: PresenceKind
    active_seconds: int


class TeachingModeSwitched(SessionScopedEvent, frozen=True, kw_only=True):
    """The tutor turned to teaching this student, or left them to work on their own.

    ``teaching_seconds`` is the total time the tutor has spent teaching this student so far.
    """

    student_id: UUID
    mode: TeachingMode
    teaching_seconds: int
