"""The ``student`` document: a student's sessions, notes, academic profile and homework."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import (
    AttendanceStatus,
    ContentAssignmentStatus,
    LevelChangeType,
    NoteVisibility,
    SessionStatus,
)
from shared.readmodels.documents.base import Document, Instant, Record
from shared.readmodels.documents.paper import PaperSummary
from shared.readmodels.documents.sessions import HelpRequest, SeatCatchUp, Work
from shared.readmodels.documents.tutors import HomeworkSummary


class StudentSession(Record, kw_only=True):
    """What the student's document holds about one of their sessions."""

    session_id: str
    title: str
    status: SessionStatus
    starts_at: Instant
    ends_at: Instant
    enrolled: bool
    course_id: str | None = None
    lesson_id: str | None = None
    attendance: AttendanceStatus | None = None
    attendance_notes: str | None = None
    catch_ups: dict[str, SeatCatchUp] = msgspec.field(default_factory=dict)
    help_requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    work: dict[str, Work] = msgspec.field(default_factory=dict)
    """Without the answers."""


class Note(Record, kw_only=True):
    note_id: str
    author_id: str
    visibility: NoteVisibility
    content: str | None
    """``None`` once redacted."""
    session_id: str | None = None
    written_at: Instant
    edited_at: Instant | None = None
    redacted: bool = False
    redacted_at: Instant | UnsetType = UNSET


class LevelChange(Record, kw_only=True):
    at: Instant
    previous_level: int | None
    new_level: int
    change_type: LevelChangeType
    reason: str | None
    changed_by: str
    school_grade: int | UnsetType = UNSET
    """On an assessment: the school grade it found."""


class Subject(Record, kw_only=True):
    """The student's standing in one course."""

    course_id: str
    school_grade: int
    working_level: int
    last_assessed_at: Instant
    assessed_by: str
    assessment_notes: str | None
    history: list[LevelChange] = msgspec.field(default_factory=list)


class ContentAssignment(Record, kw_only=True):
    assignment_id: str
    course_id: str
    lesson_id: str | None
    exercise_id: str | None
    reason: str
    session_id: str | None
    assigned_by: str
    assigned_at: Instant
    status: ContentAssignmentStatus
    replaces: str | None
    ended_at: Instant | UnsetType = UNSET
    superseded_by: str | UnsetType = UNSET
    withdrawn_by: str | UnsetType = UNSET
    withdraw_reason: str | UnsetType = UNSET


class ArchivedSessions(Record, kw_only=True):
    """What the student's document keeps of the sessions it moved out to ``student_sessions``
    documents (by the month they started), so that totals still count them."""

    count: int = 0
    months: list[str] = msgspec.field(default_factory=list)
    """``YYYY-MM``, oldest first: the months with a ``student_sessions`` document."""
    attendance: dict[str, int] = msgspec.field(default_factory=dict)
    """Marks by attendance status."""
    work_xp: int = 0
    """XP of the exercise work of those sessions."""
    last_attended_at: Instant | None = None
    """The start of the latest of them the student attended (PRESENT or LATE)."""
    first_marked_at: Instant | None = None
    """The start of the earliest of them with an attendance mark."""


class StudentHistory(Document, kw_only=True):
    """A student's sessions that started in one month and left their document (older than
    its latest ``STUDENT_RECENT_SESSIONS``), by id; keyed ``<student>:<YYYY-MM>``."""

    student_id: str
    centre_id: str
    month: str
    sessions: dict[str, StudentSession] = msgspec.field(default_factory=dict)


def student_history_key(student_id: str, month: str) -> str:
    return f"{student_id}:{month}"


class Student(Document, kw_only=True):
    """One per student."""

    student_id: str
    centre_id: str
    sessions: dict[str, StudentSession] = msgspec.field(default_factory=dict)
    """The latest sessions (``STUDENT_RECENT_SESSIONS``), and older ones while they have an
    open catch-up, unfinished work or an open help request; the others are in ``archived``."""
    notes: dict[str, Note] = msgspec.field(default_factory=dict)
    subjects: dict[str, Subject] = msgspec.field(default_factory=dict)
    """By course id."""
    content_assignments: dict[str, ContentAssignment] = msgspec.field(default_factory=dict)
    homework: dict[str, HomeworkSummary] = msgspec.field(default_factory=dict)
    overdue_homework: dict[str, Instant] | UnsetType = UNSET
    """Homework the system marked overdue (``HomeworkBecameOverdue``) and not handed in
    since, by id: when it was marked (absent while there is none). An input of the risk
    score."""
    paper: dict[str, PaperSummary] | UnsetType = UNSET
    """Paper uploads filed against the student's work, by upload id (absent until the
    first)."""
    archived: ArchivedSessions | UnsetType = UNSET
    """The sessions moved out to ``student_sessions`` documents (absent until the first)."""
