"""The ``tutor`` document: the source of a tutor's My Day."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import CatchUpStatus, HomeworkStatus, SessionMode, SessionStatus
from shared.readmodels.documents.base import Document, Instant, Record
from shared.readmodels.documents.paper import PaperSummary
from shared.readmodels.documents.sessions import HelpRequest


class TutorSession(Record, kw_only=True):
    ends_at: Instant
    location: str | None = None
    mode: SessionMode
    session_id: str
    starts_at: Instant
    status: SessionStatus
    students: list[str] = msgspec.field(default_factory=list)
    """The enrolled students, by id."""
    time_zone: str
    title: str


class TutorCatchUp(Record, kw_only=True):
    """A catch-up still owed by a student of one of the tutor's sessions: what its session
    shows of it (:class:`SeatCatchUp`), with the student and the session. Not a subclass of
    ``SeatCatchUp``: a subclass's fields come after its base's, and every document's fields
    are declared in the sorted order of their JSON names (:mod:`.base`)."""

    cancelled_at: Instant | UnsetType = UNSET
    catch_up_id: str
    completed_at: Instant | UnsetType = UNSET
    due_at: Instant
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded that its due time passed while it was open."""
    reason: str
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon."""
    session_id: str
    session_title: str
    started_at: Instant | UnsetType = UNSET
    status: CatchUpStatus
    student_id: str


class ToGrade(Record, kw_only=True):
    """Exercise work handed in that waits for the tutor's mark."""

    max_score: int
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload to mark."""
    session_id: str
    session_title: str
    student_id: str
    submitted_at: Instant | None
    title: str
    work_id: str


class HomeworkSummary(Record, kw_only=True):
    """What the student's and the marking tutor's documents hold about one homework."""

    assigned_at: Instant
    auto_score: float | None
    due_at: Instant
    feedback: str | None
    graded_at: Instant | None
    homework_id: str
    max_score: int
    on_time: bool | None
    overdue_at: Instant | UnsetType = UNSET
    """When the system recorded it overdue (not handed in by its due time)."""
    paper_upload_id: str | UnsetType = UNSET
    """Handed in on paper: the upload that carries it."""
    reminded_at: Instant | UnsetType = UNSET
    """When the student and their parents were reminded that it is due soon."""
    score: float | None
    session_id: str | None
    status: HomeworkStatus
    student_id: str
    submitted_at: Instant | None
    teacher_id: str
    title: str
    xp_awarded: int


class Tutor(Document, kw_only=True):
    """One per tutor."""

    as_of: Instant | UnsetType = UNSET
    """The latest time of the session events that refreshed this document."""
    catch_ups: dict[str, TutorCatchUp] = msgspec.field(default_factory=dict)
    centre_id: str
    homework: dict[str, HomeworkSummary] = msgspec.field(default_factory=dict)
    """Homework the tutor marks that is handed in and waits for their mark (``SUBMITTED``).
    A document written by an earlier release also holds homework set and not handed in yet,
    or marked from the answer keys, until it is graded or the document is written again."""
    open_help: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    """Open help requests of the tutor's live sessions."""
    paper: dict[str, PaperSummary] | UnsetType = UNSET
    """Paper uploads filed against work the tutor marks, until they are handed back (the
    marking queue of paper work; absent until the first)."""
    sessions: dict[str, TutorSession] = msgspec.field(default_factory=dict)
    """Sessions still to run or running, and those that ended less than
    ``TUTOR_HISTORY_DAYS`` before ``as_of``."""
    to_grade: dict[str, ToGrade] = msgspec.field(default_factory=dict)
    tutor_id: str
