"""The ``student`` document: a student's sessions, notes, academic profile and homework."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import (
    OPEN_CATCH_UPS,
    OPEN_HELP_REQUESTS,
    UNFINISHED_WORK,
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

    attendance: AttendanceStatus | None = None
    attendance_notes: str | None = None
    catch_ups: dict[str, SeatCatchUp] = msgspec.field(default_factory=dict)
    course_id: str | None = None
    ends_at: Instant
    enrolled: bool
    help_requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    lesson_id: str | None = None
    session_id: str
    starts_at: Instant
    status: SessionStatus
    title: str
    work: dict[str, Work] = msgspec.field(default_factory=dict)
    """Without the answers."""


class Note(Record, kw_only=True):
    author_id: str
    content: str | None
    """``None`` once redacted."""
    edited_at: Instant | None = None
    note_id: str
    redacted: bool = False
    redacted_at: Instant | UnsetType = UNSET
    session_id: str | None = None
    visibility: NoteVisibility
    written_at: Instant


class LevelChange(Record, kw_only=True):
    at: Instant
    change_type: LevelChangeType
    changed_by: str
    new_level: int
    previous_level: int | None
    reason: str | None
    school_grade: int | UnsetType = UNSET
    """On an assessment: the school grade it found."""


class Subject(Record, kw_only=True):
    """The student's standing in one course."""

    assessed_by: str
    assessment_notes: str | None
    course_id: str
    history: list[LevelChange] = msgspec.field(default_factory=list)
    last_assessed_at: Instant
    school_grade: int
    working_level: int


class ContentAssignment(Record, kw_only=True):
    assigned_at: Instant
    assigned_by: str
    assignment_id: str
    course_id: str
    ended_at: Instant | UnsetType = UNSET
    exercise_id: str | None
    lesson_id: str | None
    reason: str
    replaces: str | None
    session_id: str | None
    status: ContentAssignmentStatus
    superseded_by: str | UnsetType = UNSET
    withdraw_reason: str | UnsetType = UNSET
    withdrawn_by: str | UnsetType = UNSET


STUDENT_RECENT_SESSIONS: Final = 12
"""How many of a student's latest sessions (by start) that are over (completed or cancelled) their
document and overview keep, besides those still to come or running and older ones with
something open; every session lives in a ``student_sessions`` document of its month."""

RECENT_WORK: Final = 20
"""How much of a student's exercise work handed in or marked (the latest assigned) the overview
shows, from whichever sessions; the document keeps the sessions it comes from."""

_STILL_TO_COME = frozenset({SessionStatus.SCHEDULED, SessionStatus.LIVE})


class MonthTotals(Record, kw_only=True):
    """What the student's document keeps of one ``student_sessions`` month, recomputed from it
    whenever it changes: so a function of that month's sessions alone, whatever order their
    events came in."""

    attendance: dict[str, int] = msgspec.field(default_factory=dict)
    """Marks by attendance status."""
    first_marked_at: Instant | None = None
    """The start of the earliest session with an attendance mark."""
    last_attended_at: Instant | None = None
    """The start of the latest session the student attended (PRESENT or LATE)."""
    marked: int = 0
    newest_done_work: Instant | None = None
    """When the newest exercise work handed in or marked (not unfinished) was assigned."""
    newest_marked: Instant | None = None
    """The start of the newest session with an attendance mark."""
    newest_over: Instant | None = None
    """The start of the newest session that is over (neither SCHEDULED nor LIVE) with nothing
    open: of those the overview lists the latest."""
    newest_scored: Instant | None = None
    """When the newest of that work was scored (graded, else handed in, else assigned)."""
    open: int = 0
    """Sessions with an open catch-up, unfinished work or an open help request."""
    scored: int = 0
    """Scored exercise work (auto-graded or graded, with a score)."""
    sessions: int = 0
    upcoming: int = 0
    """Sessions still to come or running (SCHEDULED, LIVE)."""
    work_xp: int = 0


class SessionTotals(Record, kw_only=True):
    """Over every session of the student (the sum of their months)."""

    attendance: dict[str, int] = msgspec.field(default_factory=dict)
    count: int = 0
    first_marked_at: Instant | None = None
    last_attended_at: Instant | None = None
    work_xp: int = 0


class StudentHistory(Document, kw_only=True):
    """A student's sessions of one month, by id; keyed ``<student>:<YYYY-MM>``. A session is
    placed once, in the month of its start when the student is enrolled (or when it can no
    longer move, if later), and never moved: its entry is rewritten there on every change."""

    centre_id: str
    month: str
    sessions: dict[str, StudentSession] = msgspec.field(default_factory=dict)
    student_id: str


def student_history_key(student_id: str, month: str) -> str:
    return f"{student_id}:{month}"


def pinned(session: StudentSession) -> bool:
    """Something of the session is still open: the overview lists it whatever its age."""
    # Plain loops: every read of an overview asks this of each session of the window.
    for catch_up in session.catch_ups.values():
        if catch_up.status in OPEN_CATCH_UPS:
            return True
    for work in session.work.values():
        if work.status in UNFINISHED_WORK:
            return True
    for help_request in session.help_requests.values():
        if help_request.status in OPEN_HELP_REQUESTS:
            return True
    return False


def upcoming(session: StudentSession) -> bool:
    return session.status in _STILL_TO_COME


_BY_START: Final = attrgetter("starts_at", "session_id")


def listed(sessions: Iterable[StudentSession]) -> list[StudentSession]:
    """Of ``sessions``, what the overview lists, oldest first: those still to come or running,
    those with something open, and the latest ``STUDENT_RECENT_SESSIONS`` of the others."""
    ordered = sorted(sessions, key=_BY_START)
    shown = [s.status in _STILL_TO_COME or pinned(s) for s in ordered]
    over = shown.count(False)
    if over <= STUDENT_RECENT_SESSIONS:
        return ordered
    # Of the sessions over with nothing open, the oldest ``over - STUDENT_RECENT_SESSIONS``
    # are left out.
    skip = over - STUDENT_RECENT_SESSIONS
    kept: list[StudentSession] = []
    for session, keep in zip(ordered, shown, strict=True):
        if keep:
            kept.append(session)
        elif skip:
            skip -= 1
        else:
            kept.append(session)
    return kept


class Student(Document, kw_only=True):
    """One per student."""

    centre_id: str
    content_assignments: dict[str, ContentAssignment] = msgspec.field(default_factory=dict)
    homework: dict[str, HomeworkSummary] = msgspec.field(default_factory=dict)
    months: dict[str, MonthTotals] | UnsetType = UNSET
    """By ``YYYY-MM``: the months with a ``student_sessions`` document (absent until the
    first session)."""
    notes: dict[str, Note] = msgspec.field(default_factory=dict)
    overdue_homework: dict[str, Instant] | UnsetType = UNSET
    """Homework the system marked overdue (``HomeworkBecameOverdue``) and not handed in
    since, by id: when it was marked (absent while there is none). An input of the risk
    score."""
    paper: dict[str, PaperSummary] | UnsetType = UNSET
    """Paper uploads filed against the student's work, by upload id (absent until the
    first)."""
    placement: dict[str, str] | UnsetType = UNSET
    """Session id to month, for the sessions whose month is not (or may not stay) that of
    their start: those still SCHEDULED (a reschedule may move their start) and those
    rescheduled to another month after the student was enrolled (absent while there is none)."""
    sessions: dict[str, StudentSession] = msgspec.field(default_factory=dict)
    """A window on the student's ``student_sessions`` months, recomputed from them on every
    change of one: what the overview lists (:func:`listed`) and the sessions of its latest
    ``RECENT_WORK`` exercise work handed in or marked, and what the risk score reads of older
    sessions (the latest ``RISK_MARKS`` marked ones, the sessions of the latest ``RISK_MARKS``
    scored exercises). A document written before ``months`` holds every
    session here."""
    student_id: str
    subjects: dict[str, Subject] = msgspec.field(default_factory=dict)
    """By course id."""
    totals: SessionTotals | UnsetType = UNSET
    """Over every session, from ``months``."""


class AbsentFrom(Record, kw_only=True):
    """A session the student was marked absent from, as My Day's absence alert names it."""

    session_id: str
    starts_at: Instant
    title: str


class OpenHomework(Record, kw_only=True):
    """Homework not handed in yet, as the risk score reads it."""

    due_at: Instant
    homework_id: str
    marked_overdue: bool
    """The system recorded it overdue (``HomeworkBecameOverdue``)."""
    title: str


class StudentAlerts(Document, kw_only=True):
    """What My Day's absence and risk alerts read of one student, worked out by the projection
    from the student's document (the inputs of the risk score that do not depend on the time
    of reading): so My Day reads this small document for each student it shows, and only
    what depends on ``now`` (homework past its due time, days since the student last came) is
    left to the read."""

    absences: list[AbsentFrom] = msgspec.field(default_factory=list)
    """The latest marked sessions, newest first, as long as each was an absence."""
    attended: bool = False
    """``since`` is a session attended."""
    centre_id: str
    open_homework: list[OpenHomework] = msgspec.field(default_factory=list)
    """By due time and id."""
    percents: list[float] = msgspec.field(default_factory=list)
    """The scores of the scored exercises the document holds, in percent, oldest first."""
    since: Instant | None = None
    """The start of the latest session attended, or, if none was, of the first one marked."""
    student_id: str
