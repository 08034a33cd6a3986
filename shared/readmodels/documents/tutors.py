"""The ``tutor`` document: the source of a tutor's My Day."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import HomeworkStatus, SessionMode, SessionStatus
from shared.readmodels.documents.base import Document, Instant, Record
from shared.readmodels.documents.paper import PaperSummary
from shared.readmodels.documents.sessions import HelpRequest, SeatCatchUp


class TutorSession(Record, kw_only=True):
    session_id: str
    title: str
    status: SessionStatus
    starts_at: Instant
    ends_at: Instant
    time_zone: str
    mode: SessionMode
    location: str | None = None
    students: list[str] = msgspec.field(default_factory=list)
    """The enrolled students, by id."""


class TutorCatchUp(SeatCatchUp, kw_only=True):
    """A catch-up still owed by a student of one of the tutor's sessions."""

    student_id: str
    session_id: str
    session_title: str


class ToGrade(Record, kw_only=True):
    """Exercise work handed in that waits for the tutor's mark."""

    work_id: str
    title: str
    submitted_at: Instant | None
    max_score: int
    student_id: str
    session_id: str
    session_title: str
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload to mark."""


class HomeworkSummary(Record, kw_only=True):
    """What the student's and the marking tutor's documents hold about one homework."""

    homework_id: str
    student_id: str
    teacher_id: str
    title: str
    status: HomeworkStatus
    due_at: Instant
    max_score: int
    session_id: str | None
    assigned_at: Instant
    submitted_at: Instant | None
    on_time: bool | None
    auto_score: float | None
    score: float | None
    feedback: str | None
    graded_at: Instant | None
    xp_awarded: int
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon."""
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded it overdue (not handed in by its due time)."""
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it."""


class Tutor(Document, kw_only=True):
    """One per tutor."""

    tutor_id: str
    centre_id: str
    sessions: dict[str, TutorSession] = msgspec.field(default_factory=dict)
    """Sessions still to run or running, and those that ended less than
    ``TUTOR_HISTORY_DAYS`` before ``as_of``."""
    open_help: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    """Open help requests of the tutor's live sessions."""
    catch_ups: dict[str, TutorCatchUp] = msgspec.field(default_factory=dict)
    to_grade: dict[str, ToGrade] = msgspec.field(default_factory=dict)
    homework: dict[str, HomeworkSummary] = msgspec.field(default_factory=dict)
    """Homework the tutor marks, until it is graded."""
    paper: dict[str, PaperSummary] | UnsetType = UNSET
    """Paper uploads filed against work the tutor marks, until they are handed back (the
    marking queue of paper work; absent until the first)."""
    as_of: Instant | UnsetType = UNSET
    """The latest time of the session events that refreshed this document."""
