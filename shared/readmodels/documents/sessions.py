"""The ``session`` document: the Control Center of one session."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import (
    AttendanceStatus,
    CatchUpStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    HelpRequestCloseReason,
    HelpRequestStatus,
    PresenceKind,
    SessionMode,
    SessionStatus,
    TeachingMode,
    WorkStatus,
)
from shared.readmodels.documents.base import Document, Instant, Record


class HelpRequest(Record, kw_only=True):
    help_request_id: str
    session_id: str
    student_id: str
    priority: HelpPriority
    status: HelpRequestStatus
    raised_at: Instant
    sla_due_at: Instant
    exercise_id: str | None = None
    message: str | None = None
    acknowledged_at: Instant | UnsetType = UNSET
    started_at: Instant | UnsetType = UNSET
    resolved_at: Instant | UnsetType = UNSET
    cancelled_at: Instant | UnsetType = UNSET
    closed_at: Instant | UnsetType = UNSET
    handled_by: str | UnsetType = UNSET
    """The tutor who came to the student (acknowledged, started or resolved it)."""
    response: str | UnsetType = UNSET
    close_reason: HelpRequestCloseReason | UnsetType = UNSET
    escalated_at: Instant | UnsetType = UNSET
    """When it was still open past its SLA and the centre's supervisors were told
    (``HelpRequestEscalated``, recorded by the system)."""


class SeatCatchUp(Record, kw_only=True):
    """A catch-up as its session (and the student's own document) shows it."""

    catch_up_id: str
    status: CatchUpStatus
    due_at: Instant
    reason: str
    started_at: Instant | UnsetType = UNSET
    completed_at: Instant | UnsetType = UNSET
    cancelled_at: Instant | UnsetType = UNSET
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``CatchUpReminderSent``)."""
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed while it was open
    (``CatchUpBecameOverdue``); it stays open and can still be completed."""


class Work(Record, kw_only=True):
    """An exercise set for one student in a session, and how far they got with it."""

    work_id: str
    exercise_id: str
    title: str
    exercise_type: ExerciseType
    difficulty: Difficulty
    max_score: int
    auto_gradable: bool
    status: WorkStatus
    progress: int = 0
    assigned_at: Instant
    assigned_by: str
    started_at: Instant | None = None
    submitted_at: Instant | None = None
    graded_at: Instant | None = None
    score: float | None = None
    feedback: str | None = None
    xp_awarded: int = 0
    progress_at: Instant | UnsetType = UNSET
    answers: dict[str, str] | UnsetType = UNSET
    """In the session's document only; the student's own document leaves them out."""
    graded_by: str | UnsetType = UNSET
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it."""


class Presence(Record, kw_only=True):
    joined_at: Instant
    last: PresenceKind
    last_seen_at: Instant
    active_seconds: int
    present: bool
    left_at: Instant | UnsetType = UNSET
    last_joined_at: Instant | UnsetType = UNSET


class Teaching(Record, kw_only=True):
    """Whether the tutor is teaching the student now, and for how long before."""

    mode: TeachingMode = TeachingMode.OBSERVE
    teaching_seconds: int = 0
    since: Instant | None = None


class AttendanceReminder(Record, kw_only=True):
    """The tutor was reminded, after the session ended, to mark the attendance of these
    enrolled students (``AttendanceReminderSent``)."""

    sent_at: Instant
    unmarked_student_ids: list[str]


class Seat(Record, kw_only=True):
    """One student's row in a session: enrolment, attendance and what happened in their seat."""

    student_id: str
    enrolled: bool = False
    course_id: str | None = None
    lesson_id: str | None = None
    attendance: AttendanceStatus | None = None
    attendance_notes: str | None = None
    marked_at: Instant | None = None
    marked_by: str | None = None
    help_requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    catch_ups: dict[str, SeatCatchUp] = msgspec.field(default_factory=dict)
    presence: Presence | None = None
    last_attended_at: Instant | None = None
    """When the tutor last taught or helped the student."""
    teaching: Teaching = msgspec.field(default_factory=Teaching)
    lesson_changed_at: Instant | UnsetType = UNSET
    lesson_changed_by: str | UnsetType = UNSET
    work: dict[str, Work] | UnsetType = UNSET
    """Once an exercise was set for the student."""
    last_activity_at: Instant | UnsetType = UNSET
    """The student's own last doing (starting, progressing, handing in work)."""


class Session(Document, kw_only=True):
    """One per session."""

    session_id: str
    centre_id: str
    title: str
    tutor_id: str
    status: SessionStatus
    starts_at: Instant
    ends_at: Instant
    time_zone: str
    mode: SessionMode
    meeting_link: str | None = None
    location: str | None = None
    capacity: int = 5
    class_id: str | None = None
    started_at: Instant | None = None
    ended_at: Instant | None = None
    cancelled_at: Instant | None = None
    cancel_reason: str | None = None
    students: dict[str, Seat] = msgspec.field(default_factory=dict)
    """Every student ever enrolled or marked, by id."""
    reminded_at: Instant | UnsetType = UNSET
    """When its tutor, students and parents were reminded that it starts soon
    (``SessionReminderSent``; the latest, if it was moved and reminded again)."""
    attendance_reminder: AttendanceReminder | UnsetType = UNSET
    """When the tutor was reminded to mark attendance, and whom they had not marked."""
    auto_completed: bool | UnsetType = UNSET
    """``True`` when the system completed it, left LIVE past its end (``SessionEnded`` by
    SYSTEM); absent when a person ended it."""


def work_of(seat: Seat) -> dict[str, Work]:
    """The exercise work of a seat (none before the first is set)."""
    return seat.work if isinstance(seat.work, dict) else {}
