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
    acknowledged_at: Instant | UnsetType = UNSET
    cancelled_at: Instant | UnsetType = UNSET
    close_reason: HelpRequestCloseReason | UnsetType = UNSET
    closed_at: Instant | UnsetType = UNSET
    escalated_at: Instant | UnsetType = UNSET
    """When it was still open past its SLA and the centre's supervisors were told
    (``HelpRequestEscalated``, recorded by the system)."""
    exercise_id: str | None = None
    handled_by: str | UnsetType = UNSET
    """The tutor who came to the student (acknowledged, started or resolved it)."""
    help_request_id: str
    message: str | None = None
    priority: HelpPriority
    raised_at: Instant
    resolved_at: Instant | UnsetType = UNSET
    response: str | UnsetType = UNSET
    session_id: str
    sla_due_at: Instant
    started_at: Instant | UnsetType = UNSET
    status: HelpRequestStatus
    student_id: str


class SeatCatchUp(Record, kw_only=True):
    """A catch-up as its session (and the student's own document) shows it."""

    cancelled_at: Instant | UnsetType = UNSET
    catch_up_id: str
    completed_at: Instant | UnsetType = UNSET
    due_at: Instant
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed while it was open
    (``CatchUpBecameOverdue``); it stays open and can still be completed."""
    reason: str
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon
    (``CatchUpReminderSent``)."""
    started_at: Instant | UnsetType = UNSET
    status: CatchUpStatus


class Work(Record, kw_only=True):
    """An exercise set for one student in a session, and how far they got with it."""

    answers: dict[str, str] | UnsetType = UNSET
    """In the session's document only; the student's own document leaves them out."""
    assigned_at: Instant
    assigned_by: str
    auto_gradable: bool
    difficulty: Difficulty
    exercise_id: str
    exercise_type: ExerciseType
    feedback: str | None = None
    graded_at: Instant | None = None
    graded_by: str | UnsetType = UNSET
    max_score: int
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it."""
    progress: int = 0
    progress_at: Instant | UnsetType = UNSET
    score: float | None = None
    started_at: Instant | None = None
    status: WorkStatus
    submitted_at: Instant | None = None
    title: str
    work_id: str
    xp_awarded: int = 0


class Presence(Record, kw_only=True):
    active_seconds: int
    joined_at: Instant
    last: PresenceKind
    last_joined_at: Instant | UnsetType = UNSET
    last_seen_at: Instant
    left_at: Instant | UnsetType = UNSET
    present: bool


class Teaching(Record, kw_only=True):
    """Whether the tutor is teaching the student now, and for how long before."""

    mode: TeachingMode = TeachingMode.OBSERVE
    since: Instant | None = None
    teaching_seconds: int = 0


class AttendanceReminder(Record, kw_only=True):
    """The tutor was reminded, after the session ended, to mark the attendance of these
    enrolled students (``AttendanceReminderSent``)."""

    sent_at: Instant
    unmarked_student_ids: list[str]


class Seat(Record, kw_only=True):
    """One student's row in a session: enrolment, attendance and what happened in their seat."""

    attendance: AttendanceStatus | None = None
    attendance_notes: str | None = None
    catch_ups: dict[str, SeatCatchUp] = msgspec.field(default_factory=dict)
    course_id: str | None = None
    enrolled: bool = False
    help_requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    last_activity_at: Instant | UnsetType = UNSET
    """The student's own last doing (starting, progressing, handing in work)."""
    last_attended_at: Instant | None = None
    """When the tutor last taught or helped the student."""
    lesson_changed_at: Instant | UnsetType = UNSET
    lesson_changed_by: str | UnsetType = UNSET
    lesson_id: str | None = None
    marked_at: Instant | None = None
    marked_by: str | None = None
    presence: Presence | None = None
    student_id: str
    teaching: Teaching = msgspec.field(default_factory=Teaching)
    work: dict[str, Work] | UnsetType = UNSET
    """Once an exercise was set for the student."""


class Session(Document, kw_only=True):
    """One per session."""

    attendance_reminder: AttendanceReminder | UnsetType = UNSET
    """When the tutor was reminded to mark attendance, and whom they had not marked."""
    auto_completed: bool | UnsetType = UNSET
    """``True`` when the system completed it, left LIVE past its end (``SessionEnded`` by
    SYSTEM); absent when a person ended it."""
    cancel_reason: str | None = None
    cancelled_at: Instant | None = None
    capacity: int = 5
    centre_id: str
    class_id: str | None = None
    ended_at: Instant | None = None
    ends_at: Instant
    location: str | None = None
    meeting_link: str | None = None
    mode: SessionMode
    reminded_at: Instant | UnsetType = UNSET
    """When its tutor, students and parents were reminded that it starts soon
    (``SessionReminderSent``; the latest, if it was moved and reminded again)."""
    session_id: str
    started_at: Instant | None = None
    starts_at: Instant
    status: SessionStatus
    students: dict[str, Seat] = msgspec.field(default_factory=dict)
    """Every student ever enrolled or marked, by id."""
    time_zone: str
    title: str
    tutor_id: str


def work_of(seat: Seat) -> dict[str, Work]:
    """The exercise work of a seat (none before the first is set)."""
    return seat.work if isinstance(seat.work, dict) else {}
