"""What the command API answers: one struct per shape of resource, encoded exactly as clients
have always received it (camelCase; times as ISO 8601 with their offset, ``+00:00`` for UTC).

Every answer also carries ``position`` (see :func:`answer_type`): the notification id the read
side must reach to show the command. A receipt stores the answer without it, so a replay
answers the same body with the position of its own moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from services.command.domain.catch_up import CatchUp
from services.command.domain.cohort import ClassCohort
from services.command.domain.exercise import Exercise
from services.command.domain.homework import Homework
from services.command.domain.note import TutorNote
from services.command.domain.paper import PaperUpload, UploadStatus
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from services.command.domain.timetable import Overlap
from shared.events import (
    AttendanceStatus,
    CatchUpStatus,
    HelpPriority,
    HelpRequestStatus,
    HomeworkStatus,
    NoteVisibility,
    NotificationChannel,
    PresenceKind,
    SessionMode,
    SessionStatus,
    TeachingMode,
    WorkKind,
    WorkStatus,
)
from shared.tenancy import Role

Time = Annotated[str, msgspec.Meta(description="ISO 8601 date and time with its UTC offset")]


def time(moment: datetime) -> str:
    return moment.isoformat()


class View(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An answer of the command API."""


def wire(view: View) -> dict[str, Any]:
    """The answer as JSON-ready values (what a receipt stores)."""
    body: dict[str, Any] = msgspec.to_builtins(view)
    return body


V = TypeVar("V", bound=View)


@dataclass(frozen=True)
class WithStatus(Generic[V]):
    """An answer whose status is not the verb's usual one (a first assessment creates)."""

    view: V
    status: int


@cache
def answer_type(view: type[View]) -> type[msgspec.Struct]:
    """``view`` with the read-your-writes ``position`` last: what the client receives."""
    name = view.__name__.removesuffix("View") + "Answer"
    return msgspec.defstruct(
        name, [("position", int)], bases=(view,), frozen=True, kw_only=True, module=__name__
    )


# --- centres and people --------------------------------------------------------------------


class CentreView(View, frozen=True):
    centre_id: str


class HelpSlasView(View, frozen=True):
    centre_id: str
    help_sla_minutes: dict[str, int]
    """Minutes by priority (LOW, MEDIUM, HIGH, URGENT)."""
    changed: bool


class SessionLengthView(View, frozen=True):
    centre_id: str
    max_session_minutes: int
    changed: bool


class RemindersView(View, frozen=True):
    centre_id: str
    session_reminder_minutes: int
    """Minutes before a session starts that its tutor, students and parents are reminded."""
    changed: bool


class TimerView(View, frozen=True):
    """What a timer's command did: ``recorded`` is false when it no longer applied (the
    session moved or ended, the request was answered, the work handed in, or it was done
    already)."""

    recorded: bool


class PersonView(View, frozen=True):
    person_id: UUID
    role: Role


class ErasureView(View, frozen=True):
    """A person's erasure: when their key was destroyed (this service stopped using it at
    once), its id (``None``: they never had one), and by when every other process has stopped
    using it too (``erasedAt`` plus the key cache's seconds)."""

    person_id: UUID
    erased_at: Time
    key_id: str | None
    everywhere_by: Time


# --- sessions ------------------------------------------------------------------------------


class OverlapWarning(View, frozen=True, kw_only=True):
    """The tutor has another session at that time (scheduling goes ahead)."""

    type: str = "OVERLAPPING_SESSION"
    for_session_id: UUID
    session_id: UUID
    title: str
    starts_at: Time
    ends_at: Time

    @classmethod
    def of(cls, overlap: Overlap) -> OverlapWarning:
        other = overlap.other
        return cls(
            for_session_id=overlap.session_id,
            session_id=other.session_id,
            title=other.title,
            starts_at=time(other.starts_at),
            ends_at=time(other.ends_at),
        )


class SessionView(View, frozen=True):
    session_id: UUID
    status: SessionStatus
    tutor_id: UUID
    enrolled: int
    capacity: int
    starts_at: Time
    ends_at: Time
    mode: SessionMode
    warnings: list[OverlapWarning] | UnsetType = UNSET
    """Given by the verbs that book the session in its tutor's timetable."""
    help_requests_closed: list[UUID] | UnsetType = UNSET
    """Given by ending a session: the requests still open, closed with it."""
    catch_ups_assigned: list[UUID] | UnsetType = UNSET
    """Given by cancelling a session with ``catchUpsDueAt``: the catch-ups of its students."""

    @classmethod
    def of(
        cls,
        session: Session,
        *,
        warnings: list[Overlap] | None = None,
        help_requests_closed: list[UUID] | None = None,
    ) -> SessionView:
        return cls(
            session_id=session.id,
            status=session.status,
            tutor_id=session.tutor_id,
            enrolled=len(session.roster),
            capacity=session.capacity,
            starts_at=time(session.starts_at),
            ends_at=time(session.ends_at),
            mode=session.mode,
            warnings=UNSET if warnings is None else [OverlapWarning.of(o) for o in warnings],
            help_requests_closed=UNSET if help_requests_closed is None else help_requests_closed,
        )


class EnrolmentView(View, frozen=True):
    session_id: UUID
    student_id: UUID
    course_id: str | None
    lesson_id: str | None
    changed: bool


class SeriesView(View, frozen=True):
    series_id: UUID
    tutor_id: UUID
    session_ids: list[UUID]
    enrolled: int
    warnings: list[OverlapWarning]


class SeriesCancelledView(View, frozen=True):
    series_id: UUID
    cancelled_session_ids: list[UUID]
    standing_session_ids: list[UUID]


# --- seats: attendance, presence, teaching, help -------------------------------------------


class AttendanceRow(View, frozen=True):
    student_id: UUID
    status: AttendanceStatus
    changed: bool


class AttendanceView(View, frozen=True):
    session_id: UUID
    records: list[AttendanceRow]
    catch_ups_assigned: list[UUID]
    catch_ups_cancelled: list[UUID]


class PresenceView(View, frozen=True):
    session_id: UUID
    student_id: UUID
    kind: PresenceKind
    recorded: bool
    active_seconds: int


class TeachingView(View, frozen=True):
    session_id: UUID
    student_id: UUID
    mode: TeachingMode
    changed: bool
    teaching_seconds: int


class HelpRequestView(View, frozen=True, kw_only=True):
    help_request_id: UUID
    session_id: UUID
    student_id: UUID | UnsetType = UNSET
    """Given to the tutor handling the request."""
    priority: HelpPriority
    status: HelpRequestStatus
    sla_due_at: Time | UnsetType = UNSET
    """Given to the student raising the request: when it is due to be answered."""

    @classmethod
    def of(cls, seat: Seat, request_id: UUID) -> HelpRequestView:
        request = seat.help_requests[request_id]
        return cls(
            help_request_id=request_id,
            session_id=seat.session_id,
            student_id=seat.student_id,
            priority=request.priority,
            status=request.status,
        )


# --- classes -------------------------------------------------------------------------------


class ClassView(View, frozen=True):
    class_id: UUID
    name: str
    teacher_id: UUID
    capacity: int
    members: int
    status: str
    """ACTIVE or CANCELLED."""

    @classmethod
    def of(cls, cohort: ClassCohort) -> ClassView:
        return cls(
            class_id=cohort.id,
            name=cohort.name,
            teacher_id=cohort.teacher_id,
            capacity=cohort.capacity,
            members=len(cohort.members),
            status="CANCELLED" if cohort.cancelled else "ACTIVE",
        )


class ClassRuleView(View, frozen=True):
    class_id: UUID
    session_ids: list[UUID]
    skipped: int
    """Times of the rule the class already had a session at."""
    warnings: list[OverlapWarning]


# --- exercises, work and homework ----------------------------------------------------------


class ExerciseView(View, frozen=True):
    exercise_id: UUID
    title: str
    max_score: int
    auto_gradable: bool
    retired: bool

    @classmethod
    def of(cls, exercise: Exercise) -> ExerciseView:
        return cls(
            exercise_id=exercise.id,
            title=exercise.title,
            max_score=exercise.max_score,
            auto_gradable=exercise.auto_gradable,
            retired=exercise.retired,
        )


class WorkAssigned(View, frozen=True):
    student_id: UUID
    work_id: UUID


class ExerciseSetView(View, frozen=True):
    session_id: UUID
    exercise_id: UUID
    title: str
    auto_gradable: bool
    work: list[WorkAssigned]


class WorkView(View, frozen=True):
    work_id: UUID
    session_id: UUID
    student_id: UUID
    exercise_id: UUID
    status: WorkStatus
    progress: int
    score: float | None
    max_score: int
    xp_awarded: int

    @classmethod
    def of(cls, seat: Seat, work_id: UUID) -> WorkView:
        work = seat.work[work_id]
        return cls(
            work_id=work_id,
            session_id=seat.session_id,
            student_id=seat.student_id,
            exercise_id=work.exercise_id,
            status=work.status,
            progress=work.progress,
            score=work.score,
            max_score=work.max_score,
            xp_awarded=work.xp_awarded,
        )


class HomeworkView(View, frozen=True):
    homework_id: UUID
    student_id: UUID
    teacher_id: UUID
    status: HomeworkStatus
    max_score: int
    due_at: Time

    @classmethod
    def of(cls, homework: Homework) -> HomeworkView:
        return cls(
            homework_id=homework.id,
            student_id=homework.student_id,
            teacher_id=homework.teacher_id,
            status=homework.status,
            max_score=homework.max_score,
            due_at=time(homework.due_at),
        )


# --- notes, academic profiles, catch-ups ---------------------------------------------------


class NoteView(View, frozen=True):
    note_id: UUID
    student_id: UUID
    visibility: NoteVisibility
    redacted: bool

    @classmethod
    def of(cls, note: TutorNote) -> NoteView:
        return cls(
            note_id=note.id,
            student_id=note.student_id,
            visibility=note.visibility,
            redacted=note.redacted,
        )


class SubjectView(View, frozen=True):
    student_id: UUID
    course_id: str
    school_grade: int
    working_level: int


class ContentAssignmentView(View, frozen=True):
    assignment_id: UUID
    student_id: UUID
    course_id: str
    lesson_id: str | None
    exercise_id: str | None
    active: bool
    replaces: UUID | None
    lesson_changed: bool | UnsetType = UNSET
    """Given when assigning: whether the student's lesson in the session followed."""


class CatchUpView(View, frozen=True):
    catch_up_id: UUID
    session_id: UUID
    student_id: UUID
    status: CatchUpStatus
    due_at: Time

    @classmethod
    def of(cls, catch_up: CatchUp) -> CatchUpView:
        return cls(
            catch_up_id=catch_up.id,
            session_id=catch_up.session_id,
            student_id=catch_up.student_id,
            status=catch_up.status,
            due_at=time(catch_up.due_at),
        )


# --- notifications -------------------------------------------------------------------------


class NotificationsReadView(View, frozen=True):
    person_id: UUID
    marked: int
    """How many ids were marked read (ids not in the caller's inbox change nothing there)."""


class AllNotificationsReadView(View, frozen=True):
    person_id: UUID
    up_to: Time
    changed: bool
    """False when everything up to then was marked read already."""


class NotificationPreferencesView(View, frozen=True):
    person_id: UUID
    channels: dict[str, list[NotificationChannel]]
    changed: bool


class NotificationChannelsView(View, frozen=True):
    centre_id: str
    webhook_url: str | None
    webhook_secret_set: bool
    """Whether the webhook has a secret (the secret itself is never answered)."""
    email_enabled: bool
    changed: bool


class SheetQuestion(View, frozen=True):
    """A question as printed: never its answer key."""

    question_id: str
    prompt: str
    options: list[str]
    points: int


class SheetView(View, frozen=True):
    code: str
    short_code: str
    student_id: UUID
    student_name: str
    work_kind: WorkKind
    work_id: UUID
    title: str
    heading: str
    instructions: str | None
    questions: list[SheetQuestion]


class WorksheetsView(View, frozen=True):
    """What a PDF of worksheets is printed from."""

    centre_name: str
    sheets: list[SheetView]


class PaperUploadView(View, frozen=True):
    upload_id: UUID
    status: UploadStatus
    pages: int
    student_id: UUID | None = None
    work_kind: WorkKind | None = None
    work_id: UUID | None = None
    session_id: UUID | None = None
    score: float | None = None
    max_score: int | None = None
    reason: str | None = None
    """Why an UNROUTABLE upload could not be filed: type its short code in."""

    @classmethod
    def of(cls, upload: PaperUpload, *, reason: str | None = None) -> PaperUploadView:
        routed = upload.work_id is not None
        return cls(
            upload_id=upload.id,
            status=upload.status,
            pages=len(upload.pages),
            student_id=upload.student_id,
            work_kind=upload.work_kind,
            work_id=upload.work_id,
            session_id=upload.session_id,
            score=upload.score,
            max_score=upload.max_score if routed else None,
            reason=reason,
        )


class AnnotationView(View, frozen=True):
    upload_id: UUID
    annotation_id: UUID
    page: int
