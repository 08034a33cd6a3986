"""What the query API answers, as types: the OpenAPI document's response schemas.

The views (``shared.readmodels.views``) build JSON objects from read-model documents: a
document's fields as stored, less what a view leaves out, with what it adds. Each struct here
says exactly that, built from the document's own struct by :func:`shown`, so a field added to a
document is documented with it. Every key a view sends is a field (the API tests refuse an
answer with a key its schema does not name), and a field is required unless the view may leave
it out (a field ``UNSET`` in the document, or one shown only to staff).

The query API answers with the views' JSON as it always has; these types describe it (and the
API tests check every answer against them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_type_hints

import msgspec
from msgspec import UNSET, UnsetType

from shared.events import HelpPriority, NotificationChannel
from shared.events.paper import RubricScore, WorkKind
from shared.notifications import NotificationType
from shared.readmodels.documents import (
    AttendanceReminder,
    CatchUp,
    ClassCohort,
    ClassMember,
    ContentAssignment,
    Exercise,
    ExerciseQuestion,
    HelpRequest,
    Homework,
    HomeworkSummary,
    InboxItem,
    LevelChange,
    Note,
    PaperAnnotation,
    PaperRouting,
    PaperStatus,
    PaperSummary,
    Record,
    SeatCatchUp,
    Session,
    StudentSession,
    ToGrade,
    TutorCatchUp,
    TutorSession,
    Work,
)
from shared.readmodels.documents import Seat as SeatDoc
from shared.tenancy.roles import Role

Name = Annotated[
    str | None, msgspec.Meta(description="The person's name (null: not a person the centre knows)")
]
Seconds = Annotated[int, msgspec.Meta(ge=0)]


class Shown(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A JSON object a view sends."""


def shown(
    name: str,
    base: type[Record],
    /,
    *,
    drop: tuple[str, ...] = (),
    tag: tuple[str, str] | None = None,
    **changes: Any,
) -> type[Shown]:
    """``base`` as a view shows it: its fields without ``drop``, with ``changes`` (a field's
    type as shown, or a field the view adds). A field is optional only if it may be absent
    (its type allows ``UNSET``). ``tag``: a field and its one value, that tells this shape
    from the others a list may hold."""
    hints = get_type_hints(base, include_extras=True)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(base):
        if field.name not in drop and field.name not in changes:
            fields.append(_field(field.name, hints[field.name]))
    fields += [_field(key, kind) for key, kind in changes.items()]
    struct: Any = msgspec.defstruct(
        name,
        fields,
        bases=(Shown,),
        module=__name__,
        kw_only=True,
        rename="camel",
        forbid_unknown_fields=True,
        tag_field=tag[0] if tag else None,
        tag=tag[1] if tag else None,
    )
    struct.__doc__ = base.__doc__
    return struct  # type: ignore[no-any-return]


def _field(key: str, kind: Any) -> tuple[str, Any] | tuple[str, Any, Any]:
    return (key, kind, UNSET) if _may_be_unset(kind) else (key, kind)


def _may_be_unset(kind: Any) -> bool:
    return UnsetType in getattr(kind, "__args__", ()) or kind is UnsetType


def envelope(name: str, data: type[Any]) -> type[Shown]:
    """``{version, data}``: what a view shows, and the version of the documents behind it."""
    struct: Any = msgspec.defstruct(
        name,
        [
            (
                "version",
                Annotated[
                    int,
                    msgspec.Meta(
                        ge=0,
                        description="Grows with every event the answer reflects (the documents' "
                        "versions); equal versions: the same data",
                    ),
                ],
            ),
            ("data", data),
        ],
        bases=(Shown,),
        module=__name__,
        kw_only=True,
        rename="camel",
        forbid_unknown_fields=True,
    )
    return struct  # type: ignore[no-any-return]


# --- help requests, catch-ups, work --------------------------------------------------------

_HELP_TIMES: dict[str, Any] = {
    "waiting_seconds": Seconds | None,
    "sla_breached": bool,
    "response_seconds": Seconds | None,
    "resolution_seconds": Seconds | None,
}
"""What a view adds to a help request: how long it has waited (while open), whether it is past
its SLA, and how fast it was answered and resolved."""

HelpRequestShown = shown("HelpRequestShown", HelpRequest, **_HELP_TIMES)

SeatCatchUpShown = shown("SeatCatchUpShown", SeatCatchUp, overdue=bool)

# --- the Control Center --------------------------------------------------------------------


class Timing(Shown, kw_only=True):
    scheduled_minutes: int
    elapsed_seconds: Seconds | UnsetType = UNSET
    """LIVE: since it started."""
    remaining_seconds: int | UnsetType = UNSET
    """LIVE: until it is due to end (negative once overrun)."""
    starts_in_seconds: int | UnsetType = UNSET
    """SCHEDULED: until it is due to start (negative once late)."""


class PaperHandedIn(Shown, kw_only=True):
    """The student's work of the session handed in on paper: how much, and the latest."""

    handed_in: Annotated[int, msgspec.Meta(ge=0)]
    last_at: str | None
    last_upload_id: str | None
    last_work_id: str | None


ControlCenterRow = shown(
    "ControlCenterRow",
    SeatDoc,
    help_requests=list[HelpRequestShown],  # type: ignore[valid-type]
    catch_ups=list[SeatCatchUpShown],  # type: ignore[valid-type]
    work=list[Work],
    name=Name,
    activity=Literal["NOT_JOINED", "AWAY", "IDLE", "ACTIVE"],
    since_attended_seconds=Seconds | None,
    unattended_seconds=Seconds | None,
    needs_attention=bool,
    current_exercise=Work | None,
    work_to_grade=int,
    open_help_request=HelpRequestShown | None,
    paper=PaperHandedIn,
)
"""One student's row: their seat, with what it means now."""

AttendanceReminderShown = shown("AttendanceReminderShown", AttendanceReminder)

ControlCenter = shown(
    "ControlCenter",
    Session,
    drop=("students",),
    attendance_reminder=AttendanceReminderShown | UnsetType,
    tutor_name=Name,
    timing=Timing,
    students=list[ControlCenterRow],  # type: ignore[valid-type]
    open_help_requests=int,
    work_to_grade=int,
    needing_attention=int,
    paper_handed_in=int,
)
"""The live picture of one session, most urgent students first."""

# --- My Day --------------------------------------------------------------------------------

MyDaySession = shown("MyDaySession", TutorSession, student_names=list[Name])
MyDayHelpRequest = shown("MyDayHelpRequest", HelpRequest, **_HELP_TIMES, student_name=Name)
MyDayCatchUp = shown("MyDayCatchUp", TutorCatchUp, student_name=Name, overdue=bool)
ExerciseToGrade = shown("ExerciseToGrade", ToGrade, tag=("kind", "EXERCISE"), student_name=Name)
HomeworkToGrade = shown(
    "HomeworkToGrade", HomeworkSummary, tag=("kind", "HOMEWORK"), student_name=Name
)

PaperToMark = shown("PaperToMark", PaperSummary, student_name=Name)


class MyDayCatchUps(Shown, kw_only=True):
    pending: list[MyDayCatchUp]  # type: ignore[valid-type]
    overdue: list[MyDayCatchUp]  # type: ignore[valid-type]


class OverlapAlert(Shown, kw_only=True, tag_field="type", tag="OVERLAPPING_SESSIONS"):
    session_ids: list[str]
    message: str


class HelpSlaAlert(Shown, kw_only=True, tag_field="type", tag="HELP_SLA_BREACHED"):
    help_request_id: str
    session_id: str
    message: str


class AbsenceAlert(Shown, kw_only=True, tag_field="type", tag="REPEATED_ABSENCES"):
    student_id: str
    session_ids: list[str]
    message: str


class RiskReasonShown(Shown, kw_only=True):
    trigger: Literal[
        "CONSECUTIVE_ABSENCES",
        "OVERDUE_HOMEWORK",
        "LOW_AVERAGE_SCORE",
        "FALLING_SCORES",
        "NO_RECENT_ATTENDANCE",
    ]
    points: Annotated[int, msgspec.Meta(gt=0)]
    message: str


class RiskShown(Shown, kw_only=True):
    """The seed's risk score: the points of every trigger that holds (``reasons``, one per
    overdue homework); MEDIUM from 20, HIGH from 40."""

    score: Annotated[int, msgspec.Meta(ge=0)]
    level: Literal["LOW", "MEDIUM", "HIGH"]
    reasons: list[RiskReasonShown]


class RiskAlert(Shown, kw_only=True, tag_field="type", tag="STUDENT_AT_RISK"):
    """A student of the tutor's sessions at MEDIUM or HIGH risk."""

    student_id: str
    student_name: Name
    risk: RiskShown
    message: str


class AbsentFrom(Shown, kw_only=True):
    session_id: str
    title: str
    starts_at: str


class RepeatedAbsence(Shown, kw_only=True):
    student_id: str
    student_name: Name
    consecutive_absences: int
    sessions: list[AbsentFrom]


class MyDayStats(Shown, kw_only=True):
    sessions_today: int
    to_grade: int
    paper_to_mark: int
    completed: int
    open_help_requests: int
    overdue_catch_ups: int
    repeated_absences: int


class MyDay(Shown, kw_only=True):
    """A tutor's day: sessions of today (in the centre's time zone), open help requests of
    their live sessions, open catch-ups, work and homework to grade, and alerts."""

    tutor_id: str
    tutor_name: Name
    date: str
    time_zone: str
    sessions: list[MyDaySession]  # type: ignore[valid-type]
    next: MyDaySession | None  # type: ignore[valid-type]
    open_help_requests: list[MyDayHelpRequest]  # type: ignore[valid-type]
    catch_ups: MyDayCatchUps
    to_grade: list[ExerciseToGrade | HomeworkToGrade]  # type: ignore[valid-type]
    paper_to_mark: list[PaperToMark]  # type: ignore[valid-type]
    """Paper uploads filed against work the tutor marks, not handed back yet, oldest first."""
    alerts: list[OverlapAlert | HelpSlaAlert | AbsenceAlert | RiskAlert]
    repeated_absences: list[RepeatedAbsence]
    stats: MyDayStats


# --- a student's overview ------------------------------------------------------------------

OverviewSession = shown(
    "OverviewSession", StudentSession, drop=("catch_ups", "work", "help_requests")
)
OverviewWork = shown("OverviewWork", Work, session_id=str, session_title=str)
OverviewCatchUp = shown(
    "OverviewCatchUp", SeatCatchUp, session_id=str, session_title=str, overdue=bool
)
OverviewHelpRequest = shown("OverviewHelpRequest", HelpRequest, **_HELP_TIMES, session_title=str)
OverviewHomework = shown("OverviewHomework", HomeworkSummary, overdue=bool)
PaperSummaryShown = shown("PaperSummaryShown", PaperSummary)


class OverviewExercises(Shown, kw_only=True):
    current: list[OverviewWork]  # type: ignore[valid-type]
    """Work not yet handed in."""
    recent: list[OverviewWork]  # type: ignore[valid-type]
    """The last 20 handed in, newest first."""


class Xp(Shown, kw_only=True):
    total: int
    level: int
    to_next_level: int


NoteShown = shown("NoteShown", Note, author_name=Name)
LevelChangeShown = shown(
    "LevelChangeShown",
    LevelChange,
    reason=str | None | UnsetType,
    changed_by=str | UnsetType,
    changed_by_name=Name | UnsetType,
)
"""Students and parents see neither the reason nor who changed it (``changed*``: staff only)."""


class SubjectShown(Shown, kw_only=True):
    """The student's standing in one course; ``gap`` is how many levels they work below their
    school grade (negative: above it)."""

    course_id: str
    school_grade: int
    working_level: int
    gap: int
    last_assessed_at: str
    history: list[LevelChangeShown]  # type: ignore[valid-type]
    """Newest first."""
    assessed_by: str | UnsetType = UNSET
    """Staff only."""
    assessed_by_name: Name | UnsetType = UNSET
    """Staff only."""
    assessment_notes: str | UnsetType | None = UNSET
    """Staff only."""


ContentAssignmentShown = shown(
    "ContentAssignmentShown",
    ContentAssignment,
    reason=str | UnsetType,
    assigned_by=str | UnsetType,
    replaces=str | None | UnsetType,
    assigned_by_name=Name | UnsetType,
)
"""Students and parents see neither the reason nor who assigned it (``*By*``: staff only)."""


class AttendanceSummary(Shown, kw_only=True):
    """How often the student was marked so, over their sessions."""

    PRESENT: int
    LATE: int
    ABSENT: int
    EXCUSED: int


class OlderSessions(Shown, kw_only=True):
    """The student's sessions that ``sessions`` leaves out: older than their latest 12, with
    nothing open. ``attendanceSummary`` and ``xp`` count them."""

    count: int
    months: list[str]
    """``YYYY-MM``, newest first: the months ``GET /api/v1/students/{id}/sessions`` pages."""


class StudentSessions(Shown, kw_only=True):
    """A month of the student's older sessions (those the overview leaves out), oldest first."""

    student_id: str
    month: str | None
    """``YYYY-MM``; ``null`` when no session was left out yet."""
    sessions: list[StudentSession]
    next: str | None
    """The month before this one that has some: pass it as ``month`` for the next page."""


class StudentOverview(Shown, kw_only=True):
    """A student's sessions, work, homework, XP, catch-ups, notes (students and parents: only
    EXTERNAL ones) and academic profile."""

    student_id: str
    name: Name
    time_zone: str
    today: list[StudentSession]
    """Today's sessions they are enrolled in, with their catch-ups, help requests and work."""
    sessions: list[OverviewSession]  # type: ignore[valid-type]
    """The latest 12, and older ones while they have an open catch-up, unfinished work or an
    open help request, oldest first."""
    older_sessions: OlderSessions
    exercises: OverviewExercises
    open_help_request: OverviewHelpRequest | None  # type: ignore[valid-type]
    homework: list[OverviewHomework]  # type: ignore[valid-type]
    paper: list[PaperSummaryShown]  # type: ignore[valid-type]
    """Uploads of paper work filed against the student's work, oldest first (``score`` once
    handed back)."""
    xp: Xp
    catch_ups: list[OverviewCatchUp]  # type: ignore[valid-type]
    notes: list[NoteShown]  # type: ignore[valid-type]
    attendance_summary: AttendanceSummary
    academic_profile: list[SubjectShown]
    content_assignments: list[ContentAssignmentShown]  # type: ignore[valid-type]
    """The active ones."""
    ended_content_assignments: list[ContentAssignmentShown] | UnsetType = UNSET  # type: ignore[valid-type]
    """Staff only: withdrawn or superseded, the latest first."""
    risk: RiskShown | UnsetType = UNSET
    """Staff only: the risk score now, its level and reasons (students and parents see the
    facts behind it, not the label)."""


# --- classes, the catalogue, homework ------------------------------------------------------

RosterMember = shown("RosterMember", ClassMember, name=Name)
ClassRoster = shown(
    "ClassRoster",
    ClassCohort,
    members=list[RosterMember],  # type: ignore[valid-type]
    teacher_name=Name,
    enrolled=int,
    places_left=int,
)
"""A class's teacher, capacity and members (the active ones first)."""

QuestionShown = shown(
    "QuestionShown",
    ExerciseQuestion,
    accepted_answers=list[str] | UnsetType,
    tolerance=float | None | UnsetType,
)
"""Students see a question without its answer key (``acceptedAnswers``, ``tolerance``)."""
ExerciseShown = shown("ExerciseShown", Exercise, questions=list[QuestionShown])  # type: ignore[valid-type]
CatalogueRow = shown(
    "CatalogueRow",
    Exercise,
    questions=Annotated[int, msgspec.Meta(ge=0, description="How many questions it has")],
)


class Catalogue(Shown, kw_only=True):
    exercises: list[CatalogueRow]  # type: ignore[valid-type]


HomeworkShown = shown("HomeworkShown", Homework, student_name=Name, teacher_name=Name, overdue=bool)

# --- reports -------------------------------------------------------------------------------

CatchUpRow = shown(
    "CatchUpRow",
    CatchUp,
    student_name=Name,
    session_title=str,
    session_starts_at=str,
    tutor_id=str,
    tutor_name=Name,
    overdue=bool,
    overdue_seconds=Seconds | None,
)


class CatchUpList(Shown, kw_only=True):
    catch_ups: list[CatchUpRow]  # type: ignore[valid-type]
    total: int
    """How many match the filters, over every page."""
    next: str | None
    """The cursor of the next page, if there is one."""


class Distribution(Shown, kw_only=True):
    """Durations in seconds: count, mean, median and 90th percentile (null when none)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None


class HelpStats(Shown, kw_only=True):
    raised: int
    resolved: int
    cancelled: int
    closed: int
    """Closed with their session, never answered."""
    open: int
    sla_breached: int
    response_seconds: Distribution
    resolution_seconds: Distribution


class HelpFigures(Shown, kw_only=True):
    total: HelpStats
    by_priority: dict[HelpPriority, HelpStats]


class TutorHelpFigures(HelpFigures, kw_only=True):
    tutor_id: str
    tutor_name: Name


class HelpAnalytics(Shown, kw_only=True):
    """Help requests raised in ``[from, to)``, per tutor and per priority."""

    from_: str
    to: str
    tutors: list[TutorHelpFigures]
    overall: HelpFigures


# --- the session log -----------------------------------------------------------------------


class LogEntry(Shown, kw_only=True):
    position: int
    """The event's notification id."""
    occurred_at: str
    type: str
    actor_id: str
    actor_role: str
    aggregate_id: str
    aggregate_version: int
    event: dict[str, Any]
    """The event in its contract's JSON (see docs/events.md)."""


class SessionLog(Shown, kw_only=True):
    session_id: str
    entries: list[LogEntry]
    next: int | None
    """``after`` for the next page, if this one is full."""


# --- notifications -------------------------------------------------------------------------

InboxItemShown = shown("InboxItemShown", InboxItem)


class InboxPage(Shown, kw_only=True):
    """A page of the caller's own notifications, newest first."""

    person_id: str
    unread: Annotated[int, msgspec.Meta(ge=0)]
    """How many of all their notifications are unread."""
    items: list[InboxItemShown]  # type: ignore[valid-type]
    next: str | None
    """``cursor`` for the next page, if there are more."""


class UnreadCount(Shown, kw_only=True):
    person_id: str
    unread: Annotated[int, msgspec.Meta(ge=0)]


class NotificationPreferences(Shown, kw_only=True):
    person_id: str
    channels: dict[NotificationType, list[NotificationChannel]]
    """Per type, the channels besides the inbox (a type not named: the inbox only)."""


class CentreChannels(Shown, kw_only=True):
    """A centre's notification channels; the webhook secret is never shown."""

    centre_id: str
    webhook_url: str | None
    webhook_secret_set: bool
    email_enabled: bool


# --- paper work ----------------------------------------------------------------------------

PaperRoutingShown = shown("PaperRoutingShown", PaperRouting, student_name=Name, teacher_name=Name)
"""The work the upload was filed against."""


class PaperPageShown(Shown, kw_only=True):
    page: Annotated[int, msgspec.Meta(ge=0)]
    content_type: str
    width: int
    height: int
    size: int
    url: str
    """The scanned page: a signed URL, valid for ``TUTORPULSE_BLOB_URL_SECONDS``."""
    marked_url: str
    """The page with the ink on it, as PNG (``markedPaperPage``; at the same moment)."""


PaperAnnotationShown = shown(
    "PaperAnnotationShown", PaperAnnotation, drop=("erased_at", "erased_position")
)
"""A piece of ink on a page (its ``position``: the notification id of its event)."""


class ReplayStep(Shown, kw_only=True):
    """One step of the marking, in the order it happened."""

    position: int
    at: str
    action: Literal["ANNOTATED", "ERASED"]
    annotation_id: str
    page: int


class VoiceCommentShown(Shown, kw_only=True):
    content_type: str
    seconds: float
    at: str
    position: int
    url: str
    """A signed URL, valid for ``TUTORPULSE_BLOB_URL_SECONDS``."""


class PaperScoreShown(Shown, kw_only=True):
    rubric: list[RubricScore]
    score: float
    max_score: int
    at: str
    position: int


class AsOfShown(Shown, kw_only=True):
    at: str | None
    position: int | None


class PaperUpload(Shown, kw_only=True):
    """One upload: its pages, the work it was filed against, and its marking (students and
    parents see the marking once it is handed back), now or as it was at ``asOf``."""

    upload_id: str
    status: PaperStatus
    uploaded_by: str
    uploaded_by_role: Role
    uploaded_by_name: Name
    uploaded_at: str
    unroutable_reason: str | None
    """Why no code was found (staff only; null for others)."""
    routing: PaperRoutingShown | None  # type: ignore[valid-type]
    pages: list[PaperPageShown]
    annotations: list[PaperAnnotationShown]  # type: ignore[valid-type]
    """The ink on the pages (not erased), in the order it was put on."""
    replay: list[ReplayStep]
    """Every stroke, stamp, note and erasure in order: the marking stroke by stroke."""
    voice_comment: VoiceCommentShown | None
    score: PaperScoreShown | None
    feedback: str | None
    handed_back_at: str | None
    as_of: AsOfShown | None
    """The moment asked for (``at``, ``atPosition``); null: now."""


class PaperRow(Shown, kw_only=True):
    upload_id: str
    status: PaperStatus
    uploaded_by: str
    uploaded_by_role: Role
    uploaded_by_name: Name
    uploaded_at: str
    pages: int
    unroutable_reason: str | None
    student_id: str | None
    student_name: Name
    work_kind: WorkKind | None
    work_id: str | None
    title: str | None
    teacher_id: str | None
    handed_back_at: str | None


class PaperUploadList(Shown, kw_only=True):
    """The centre's uploads, newest first."""

    uploads: list[PaperRow]
    total: int
    """How many match, over every page."""
    next: str | None
    """The cursor of the next page, if there is one."""


StudentPaperRow = shown("StudentPaperRow", PaperSummary, student_name=Name, teacher_name=Name)


class StudentPaper(Shown, kw_only=True):
    """The uploads filed against a student's work, oldest first."""

    student_id: str
    name: Name
    uploads: list[StudentPaperRow]  # type: ignore[valid-type]


# --- what each operation answers -----------------------------------------------------------

MyDayAnswer = envelope("MyDayAnswer", MyDay)
ControlCenterAnswer = envelope("ControlCenterAnswer", ControlCenter)
StudentOverviewAnswer = envelope("StudentOverviewAnswer", StudentOverview)
StudentSessionsAnswer = envelope("StudentSessionsAnswer", StudentSessions)
ClassRosterAnswer = envelope("ClassRosterAnswer", ClassRoster)
CatalogueAnswer = envelope("CatalogueAnswer", Catalogue)
ExerciseAnswer = envelope("ExerciseAnswer", ExerciseShown)
HomeworkAnswer = envelope("HomeworkAnswer", HomeworkShown)
CatchUpListAnswer = envelope("CatchUpListAnswer", CatchUpList)
HelpAnalyticsAnswer = envelope("HelpAnalyticsAnswer", HelpAnalytics)
InboxAnswer = envelope("InboxAnswer", InboxPage)
UnreadCountAnswer = envelope("UnreadCountAnswer", UnreadCount)
NotificationPreferencesAnswer = envelope("NotificationPreferencesAnswer", NotificationPreferences)
CentreChannelsAnswer = envelope("CentreChannelsAnswer", CentreChannels)
PaperUploadAnswer = envelope("PaperUploadAnswer", PaperUpload)
PaperUploadListAnswer = envelope("PaperUploadListAnswer", PaperUploadList)
StudentPaperAnswer = envelope("StudentPaperAnswer", StudentPaper)
