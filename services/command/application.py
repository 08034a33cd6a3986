"""The command side of tutorpulse: each public method is one verb of a tutoring centre.

A command loads the aggregates it needs, checks who may act, asks the aggregates to decide,
and appends every resulting event in one atomic commit. Optimistic concurrency conflicts are
retried from a fresh read a few times, then reported as a conflict; nothing is ever
overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.command.domain.academic import (
    AcademicProfile,
    AssignmentNotFound,
    academic_profile_id,
)
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
)
from services.command.domain.catch_up import CatchUp
from services.command.domain.cohort import ClassCohort, weekly_starts
from services.command.domain.directory import Centre, Person, centre_aggregate_id
from services.command.domain.exercise import Exercise
from services.command.domain.homework import Homework
from services.command.domain.note import EDITORS_OF_ANY_NOTE, TutorNote
from services.command.domain.seat import Seat, seat_id
from services.command.domain.series import SessionSeries
from services.command.domain.session import DEFAULT_CAPACITY, Session
from services.command.domain.timetable import (
    Overlap,
    TimetableWeek,
    TutorTimetable,
    timetable_week_id,
)
from services.command.idempotency import CommandReceipt, IdempotencyKey, KeyReused, receipt_id
from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    HelpRequestCloseReason,
    LevelChangeType,
    NoteVisibility,
    PresenceKind,
    Question,
    SessionMode,
    SessionStatus,
    TeachingMode,
    WeeklyRule,
)
from shared.eventstore import EventStore
from shared.tenancy import Actor, Forbidden, Permission, Role, require

log = structlog.get_logger(__name__)

A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 4
TUTOR_ROLES = frozenset({Role.TEACHER, Role.CENTER_SUPERVISOR})


class NotFound(Exception):
    """No such thing in the actor's centre (HTTP 404). Other centres' things are not found."""


class ConcurrentUpdate(Exception):
    """Others kept changing the same aggregates; the client may retry (HTTP 409)."""


@dataclass(frozen=True)
class CommandResult:
    status_code: int
    body: dict[str, Any]
    position: int
    """Notification id the read side must reach to reflect this command."""
    replayed: bool = False


@dataclass
class Outcome:
    aggregates: Sequence[Aggregate]
    body: dict[str, Any]
    status_code: int = 200


@dataclass(frozen=True)
class AttendanceMark:
    student_id: UUID
    status: AttendanceStatus
    notes: str | None = None


@dataclass(frozen=True)
class SessionPlan:
    title: str
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    tutor_id: UUID | None = None
    time_zone: str | None = None
    meeting_link: str | None = None
    location: str | None = None
    capacity: int = DEFAULT_CAPACITY
    class_id: UUID | None = None


@dataclass(frozen=True)
class ClosedHelp:
    """A seat whose open help request a command closed."""

    seat: Seat
    request_id: UUID


@dataclass(frozen=True)
class SeriesStudent:
    """A student enrolled in every session of a series, on their own course and lesson."""

    student_id: UUID
    course_id: str | None = None
    lesson_id: str | None = None


class TutoringCentres(EventStore):
    """Command handlers over the event store."""

    DIRECTORY_CACHE_SECONDS = 60.0
    """Centres and people are read by almost every command and change rarely; a command may
    see a registration this much later than it happened."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._directory: dict[UUID, tuple[float, Aggregate]] = {}

    # --- centres and people -------------------------------------------------------------

    def register_centre(
        self,
        actor: Actor,
        centre_id: str,
        *,
        name: str,
        time_zone: str,
        help_sla_minutes: dict[str, int] | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CENTRE_REGISTER)

        def decide() -> Outcome:
            centre = Centre.register(
                centre_id, by=actor, name=name, time_zone=time_zone,
                help_sla_minutes=help_sla_minutes,
            )
            return Outcome([centre], {"centreId": centre_id}, 201)

        return self._execute(actor, decide, idempotency, on_conflict="the centre already exists")

    def change_help_slas(
        self, actor: Actor, centre_id: str, minutes: dict[str, int], *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CENTRE_CONFIGURE)
        if centre_id != actor.centre_id:
            raise NotFound(f"centre {centre_id!r} is not registered")

        def decide() -> Outcome:
            centre = self._get(Centre, centre_aggregate_id(actor.centre_id))  # not the shared cached copy
            changed = centre.change_help_slas(minutes, by=actor)
            return Outcome([centre], {"centreId": centre_id, "helpSlaMinutes": centre.help_sla_minutes,
                                      "changed": changed})

        return self._execute(actor, decide, idempotency)

    def change_max_session_length(
        self, actor: Actor, centre_id: str, minutes: int, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """How long a session of the centre may last, from now on (sessions already booked keep
        their times)."""
        require(actor, Permission.CENTRE_CONFIGURE)
        if centre_id != actor.centre_id:
            raise NotFound(f"centre {centre_id!r} is not registered")

        def decide() -> Outcome:
            centre = self._get(Centre, centre_aggregate_id(actor.centre_id))  # not the shared cached copy
            changed = centre.change_max_session_length(minutes, by=actor)
            return Outcome([centre], {"centreId": centre_id, "maxSessionMinutes": centre.max_session_minutes,
                                      "changed": changed})

        return self._execute(actor, decide, idempotency)

    def register_person(
        self,
        actor: Actor,
        *,
        name: str,
        email: str,
        role: Role,
        guardian_id: UUID | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.PERSON_REGISTER)

        def decide() -> Outcome:
            self._centre(actor)
            guardian = None
            if guardian_id is not None:
                guardian = self._find(Person, guardian_id, actor, field_name="guardianId")
            person = Person.register(by=actor, name=name, email=email, role=role, guardian=guardian)
            return Outcome([person], {"personId": str(person.id), "role": role.value}, 201)

        return self._execute(
            actor, decide, idempotency, on_conflict="someone with this e-mail is already registered"
        )

    # --- sessions ----------------------------------------------------------------------

    def schedule_session(
        self, actor: Actor, plan: SessionPlan, *, idempotency: IdempotencyKey | None = None
    ) -> CommandResult:
        require(actor, Permission.SESSION_SCHEDULE)
        tutor_id = plan.tutor_id or actor.user_id
        if actor.role is Role.TEACHER and tutor_id != actor.user_id:
            raise Forbidden("a TEACHER schedules sessions only for themselves")

        def decide() -> Outcome:
            centre = self._centre(actor)
            self._tutor(actor, tutor_id, field_name="tutorId")
            session = Session.schedule(
                uuid4(),
                by=actor,
                tutor_id=tutor_id,
                title=plan.title,
                starts_at=plan.starts_at,
                ends_at=plan.ends_at,
                time_zone=plan.time_zone or centre.time_zone,
                mode=plan.mode,
                meeting_link=plan.meeting_link,
                location=plan.location,
                capacity=plan.capacity,
                class_id=plan.class_id,
                longest=centre.longest_session,
            )
            weeks, warnings = self._book(actor, [session])
            return Outcome([session, *weeks], {**self._session_body(session), "warnings": warnings}, 201)

        return self._execute(actor, decide, idempotency)

    def start_session(
        self, actor: Actor, session_id: UUID, *, idempotency: IdempotencyKey | None = None
    ) -> CommandResult:
        return self._session_verb(actor, session_id, Permission.SESSION_RUN, idempotency,
                                  lambda s: s.start(by=actor))

    def end_session(
        self, actor: Actor, session_id: UUID, *, idempotency: IdempotencyKey | None = None
    ) -> CommandResult:
        """LIVE → COMPLETED; help requests still open are closed in the same commit (nobody can
        answer them any more), so they never wait for ever."""
        require(actor, Permission.SESSION_RUN)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            session.end(by=actor)
            closed = self._close_help_requests(actor, session, [*session.roster, *session.removed_students],
                                               HelpRequestCloseReason.SESSION_ENDED)
            body = self._session_body(session) | {"helpRequestsClosed": [str(c.request_id) for c in closed]}
            return Outcome([session, *(c.seat for c in closed)], body)

        return self._execute(actor, decide, idempotency)

    def _close_help_requests(
        self, actor: Actor, session: Session, students: Iterable[UUID], reason: HelpRequestCloseReason,
    ) -> list[ClosedHelp]:
        """Close the open help request of each of ``students`` in the session, if they have one."""
        closed = []
        for student_id in sorted(students):
            seat = self._seat(session, student_id)
            request_id = seat.close_open_help_request(reason, by=actor)
            if request_id is not None:
                closed.append(ClosedHelp(seat, request_id))
        return closed

    def cancel_session(
        self, actor: Actor, session_id: UUID, *, reason: str,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._session_verb(actor, session_id, Permission.SESSION_CANCEL, idempotency,
                                  lambda s: s.cancel(by=actor, reason=reason))

    def reschedule_session(
        self, actor: Actor, session_id: UUID, *, starts_at: datetime, ends_at: datetime,
        reason: str | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._session_verb(actor, session_id, Permission.SESSION_SCHEDULE, idempotency,
                                  lambda s: s.reschedule(by=actor, starts_at=starts_at, ends_at=ends_at,
                                                         reason=reason,
                                                         longest=self._centre(actor).longest_session),
                                  warns=True)

    def change_session_mode(
        self, actor: Actor, session_id: UUID, *, mode: SessionMode, meeting_link: str | None = None,
        location: str | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._session_verb(actor, session_id, Permission.SESSION_SCHEDULE, idempotency,
                                  lambda s: s.change_mode(by=actor, mode=mode,
                                                          meeting_link=meeting_link, location=location))

    def extend_session(
        self, actor: Actor, session_id: UUID, *, minutes: int,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._session_verb(actor, session_id, Permission.SESSION_RUN, idempotency,
                                  lambda s: s.extend(by=actor, minutes=minutes,
                                                     longest=self._centre(actor).longest_session),
                                  warns=True)

    def enrol_student(
        self,
        actor: Actor,
        session_id: UUID,
        student_id: UUID,
        *,
        course_id: str | None = None,
        lesson_id: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.ENROLMENT_MANAGE)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            student = self._find(Person, student_id, actor, field_name="studentId")
            if student.role is not Role.STUDENT:
                raise InvalidValue("only a STUDENT can be enrolled", field="studentId")
            session.enrol(student_id, by=actor, course_id=course_id, lesson_id=lesson_id)
            return Outcome([session], self._session_body(session), 201)

        return self._execute(actor, decide, idempotency)

    def remove_student(
        self,
        actor: Actor,
        session_id: UUID,
        student_id: UUID,
        *,
        reason: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.ENROLMENT_MANAGE)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            session.remove(student_id, by=actor, reason=reason)
            closed = self._close_help_requests(actor, session, [student_id],
                                               HelpRequestCloseReason.STUDENT_REMOVED)
            return Outcome([session, *(c.seat for c in closed)], self._session_body(session))

        return self._execute(actor, decide, idempotency)

    def change_lesson(
        self,
        actor: Actor,
        session_id: UUID,
        student_id: UUID,
        *,
        lesson_id: str,
        course_id: str | None = None,
        reason: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Move an enrolled student to another lesson (of another course, if named) while the
        session is SCHEDULED or LIVE: the Control Center shows it at once."""
        require(actor, Permission.LESSON_CHANGE)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            changed = session.change_lesson(student_id, by=actor, lesson_id=lesson_id, course_id=course_id,
                                            reason=reason)
            return Outcome([session], self._enrolment_body(session, student_id) | {"changed": changed})

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _enrolment_body(session: Session, student_id: UUID) -> dict[str, Any]:
        course_id, lesson_id = session.lesson_of(student_id)
        return {"sessionId": str(session.id), "studentId": str(student_id), "courseId": course_id,
                "lessonId": lesson_id}

    # --- attendance --------------------------------------------------------------------

    def mark_attendance(
        self,
        actor: Actor,
        session_id: UUID,
        marks: Sequence[AttendanceMark],
        *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Mark several students at once, atomically: all marks are stored or none.

        A student newly marked ABSENT gets a catch-up package in the same commit; a mark that
        takes an absence back (EXCUSED, PRESENT or LATE) cancels that package.
        """
        require(actor, Permission.ATTENDANCE_MARK)
        if not marks:
            raise InvalidValue("give at least one record", field="records")
        seen: set[UUID] = set()
        for index, mark in enumerate(marks):
            if mark.student_id in seen:
                raise InvalidValue("a student appears twice", field=f"records[{index}].studentId")
            seen.add(mark.student_id)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            changed: list[Aggregate] = []
            rows: list[dict[str, Any]] = []
            assigned: list[str] = []
            cancelled: list[str] = []
            for index, mark in enumerate(marks):
                if not session.is_enrolled(mark.student_id):
                    raise InvalidValue(
                        "the student is not enrolled in this session",
                        field=f"records[{index}].studentId",
                    )
                seat = self._seat(session, mark.student_id)
                try:
                    change = seat.mark_attendance(session, mark.status, by=actor, notes=mark.notes)
                except InvalidValue as error:
                    raise InvalidValue(error.detail, field=f"records[{index}].{error.field}") from None
                rows.append({"studentId": str(mark.student_id), "status": mark.status.value,
                             "changed": change is not None})
                if change is None:
                    continue
                changed.append(seat)
                if change.opens_catch_up is not None:
                    changed.append(CatchUp.assign_for_absence(
                        change.opens_catch_up, session, mark.student_id, by=actor))
                    assigned.append(str(change.opens_catch_up))
                if change.closes_catch_up is not None:
                    catch_up = self._get(CatchUp, change.closes_catch_up)
                    catch_up.cancel(by=actor, reason=f"attendance corrected to {mark.status}")
                    if catch_up.has_changes:
                        changed.append(catch_up)
                        cancelled.append(str(change.closes_catch_up))
            body = {"sessionId": str(session_id), "records": rows,
                    "catchUpsAssigned": assigned, "catchUpsCancelled": cancelled}
            return Outcome(changed, body)

        return self._execute(actor, decide, idempotency)

    # --- help requests -----------------------------------------------------------------

    def raise_help_request(
        self,
        actor: Actor,
        session_id: UUID,
        *,
        priority: HelpPriority = HelpPriority.MEDIUM,
        exercise_id: str | None = None,
        message: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.HELP_REQUEST_RAISE)

        def decide() -> Outcome:
            centre = self._centre(actor)
            session = self._find(Session, session_id, actor)
            seat = self._seat(session, actor.user_id)
            request_id = seat.raise_help_request(
                session, priority, by=actor,
                sla=timedelta(minutes=centre.help_sla_minutes_for(priority)),
                exercise_id=exercise_id, message=message,
            )
            request = seat.help_requests[request_id]
            body = {"helpRequestId": str(request_id), "sessionId": str(session_id),
                    "priority": priority.value, "status": "PENDING",
                    "slaDueAt": request.sla_due_at.isoformat()}
            return Outcome([seat], body, 201)

        return self._execute(actor, decide, idempotency)

    def acknowledge_help_request(
        self, actor: Actor, session_id: UUID, request_id: UUID, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._handle_help(actor, session_id, request_id, idempotency,
                                 lambda seat: seat.acknowledge_help_request(request_id, by=actor))

    def start_helping(
        self, actor: Actor, session_id: UUID, request_id: UUID, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._handle_help(actor, session_id, request_id, idempotency,
                                 lambda seat: seat.start_helping(request_id, by=actor))

    def resolve_help_request(
        self, actor: Actor, session_id: UUID, request_id: UUID, *, response: str,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._handle_help(actor, session_id, request_id, idempotency,
                                 lambda seat: seat.resolve_help_request(request_id, by=actor,
                                                                        response=response))

    def cancel_help_request(
        self, actor: Actor, session_id: UUID, request_id: UUID, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """The student who asked withdraws their request."""
        require(actor, Permission.HELP_REQUEST_RAISE)

        def decide() -> Outcome:
            session = self._find(Session, session_id, actor)
            seat = self._seat(session, actor.user_id)
            if request_id not in seat.help_requests:
                raise NotFound("no such help request of yours in this session")
            seat.cancel_help_request(request_id, by=actor)
            return Outcome([seat], self._help_body(seat, request_id))

        return self._execute(actor, decide, idempotency)

    def _handle_help(
        self, actor: Actor, session_id: UUID, request_id: UUID,
        idempotency: IdempotencyKey | None, act: Callable[[Seat], None],
    ) -> CommandResult:
        require(actor, Permission.HELP_REQUEST_HANDLE)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            seat = self._seat_holding(session, session.roster, lambda seat: request_id in seat.help_requests,
                                      "no such help request in this session")
            act(seat)
            return Outcome([seat], self._help_body(seat, request_id))

        return self._execute(actor, decide, idempotency)

    def _seat_holding(self, session: Session, students: Iterable[UUID], holds: Callable[[Seat], bool],
                      missing: str) -> Seat:
        """The seat of one of ``students`` in the session for which ``holds`` is true."""
        for student_id in students:
            seat = self._seat(session, student_id)
            if holds(seat):
                return seat
        raise NotFound(missing)

    @staticmethod
    def _help_body(seat: Seat, request_id: UUID) -> dict[str, Any]:
        request = seat.help_requests[request_id]
        return {"helpRequestId": str(request_id), "sessionId": str(seat.session_id),
                "studentId": str(seat.student_id), "priority": request.priority.value,
                "status": request.status.value}

    # --- presence and teaching -------------------------------------------------------------

    def record_presence(
        self, actor: Actor, session_id: UUID, kind: PresenceKind, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """A student's own client reports that they joined, left, dropped, came back, or are there."""
        require(actor, Permission.PRESENCE_RECORD)

        def decide() -> Outcome:
            session = self._find(Session, session_id, actor)
            seat = self._seat(session, actor.user_id)
            recorded = seat.record_presence(session, kind, by=actor)
            return Outcome([seat], {"sessionId": str(session_id), "studentId": str(actor.user_id),
                                    "kind": kind.value, "recorded": recorded,
                                    "activeSeconds": seat.active_seconds})

        return self._execute(actor, decide, idempotency)

    def switch_teaching_mode(
        self, actor: Actor, session_id: UUID, student_id: UUID, mode: TeachingMode, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.TEACHING_SWITCH)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            seat = self._seat(session, student_id)
            changed = seat.switch_teaching_mode(session, mode, by=actor)
            return Outcome([seat], {"sessionId": str(session_id), "studentId": str(student_id),
                                    "mode": mode.value, "changed": changed,
                                    "teachingSeconds": seat.teaching_seconds})

        return self._execute(actor, decide, idempotency)

    # --- weekly series and the tutor's timetable ----------------------------------------

    def schedule_series(
        self, actor: Actor, rule: WeeklyRule, plan: SessionPlan, students: Sequence[SeriesStudent], *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Every session of a weekly rule for one tutor, each with the same students, in one
        commit. ``plan`` gives the tutor, title, mode, place and capacity."""
        require(actor, Permission.SESSION_SCHEDULE)
        tutor_id = plan.tutor_id or actor.user_id
        if actor.role is Role.TEACHER and tutor_id != actor.user_id:
            raise Forbidden("a TEACHER schedules sessions only for themselves")
        if len(students) > plan.capacity:
            raise InvalidValue(f"more students than the capacity ({plan.capacity})", field="students")
        seen: set[UUID] = set()
        for index, student in enumerate(students):
            if student.student_id in seen:
                raise InvalidValue("a student appears twice", field=f"students[{index}].studentId")
            seen.add(student.student_id)

        def decide() -> Outcome:
            centre = self._centre(actor)
            slots = weekly_starts(rule, centre.longest_session)
            self._tutor(actor, tutor_id, field_name="tutorId")
            for index, student in enumerate(students):
                person = self._find(Person, student.student_id, actor,
                                    field_name=f"students[{index}].studentId")
                if person.role is not Role.STUDENT:
                    raise InvalidValue("only a STUDENT can be enrolled",
                                       field=f"students[{index}].studentId")
            sessions = []
            for starts, ends in slots:
                session = Session.schedule(
                    uuid4(), by=actor, tutor_id=tutor_id, title=plan.title, starts_at=starts,
                    ends_at=ends, time_zone=rule.time_zone, mode=plan.mode,
                    meeting_link=plan.meeting_link, location=plan.location, capacity=plan.capacity,
                    longest=centre.longest_session)
                for student in students:
                    session.enrol(student.student_id, by=actor, course_id=student.course_id,
                                  lesson_id=student.lesson_id)
                sessions.append(session)
            weeks, warnings = self._book(actor, sessions)
            series = SessionSeries.schedule(uuid4(), actor.centre_id, sessions, by=actor, rule=rule,
                                            title=plan.title)
            body = {"seriesId": str(series.id), "tutorId": str(tutor_id),
                    "sessionIds": [str(s.id) for s in sessions], "enrolled": len(students),
                    "warnings": warnings}
            return Outcome([*sessions, *weeks, series], body, 201)

        return self._execute(actor, decide, idempotency)

    def cancel_series(
        self, actor: Actor, series_id: UUID, *, reason: str, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Call off every session of a series still to come, in one commit; the tutor's time in
        those weeks is given back. Sessions that started or ended stand."""
        require(actor, Permission.SESSION_CANCEL)

        def decide() -> Outcome:
            series = self._find(SessionSeries, series_id, actor)
            if actor.role is Role.TEACHER and series.tutor_id != actor.user_id:
                raise Forbidden("a TEACHER may act only on their own sessions")
            sessions = [self._get(Session, session_id) for session_id in series.session_ids]
            cancelled = series.cancel(sessions, by=actor, reason=reason)
            timetable = self._timetable(actor, series.tutor_id, *((s.starts_at, s.ends_at) for s in cancelled))
            for session in cancelled:
                timetable.release(session, by=actor)
            body = {"seriesId": str(series_id), "cancelledSessionIds": [str(s.id) for s in cancelled],
                    "standingSessionIds": [str(s.id) for s in sessions if s.status is not SessionStatus.CANCELLED]}
            return Outcome([series, *cancelled, *timetable.weeks], body)

        return self._execute(actor, decide, idempotency)

    def _timetable(self, actor: Actor, tutor_id: UUID, *times: tuple[datetime, datetime]) -> TutorTimetable:
        """The weeks of the tutor's timetable that sessions at these times touch."""
        weeks = []
        for week in TutorTimetable.weeks_needed(*times):
            try:
                weeks.append(self._get(TimetableWeek, timetable_week_id(tutor_id, week)))
            except NotFound:
                weeks.append(TimetableWeek.of(tutor_id, week, actor.centre_id))
        return TutorTimetable(tutor_id, weeks)

    def _book(
        self, actor: Actor, sessions: Sequence[Session],
    ) -> tuple[list[TimetableWeek], list[dict[str, Any]]]:
        """Book new sessions of one tutor in their timetable: the weeks to save, and warnings."""
        timetable = self._timetable(actor, sessions[0].tutor_id,
                                    *((s.starts_at, s.ends_at) for s in sessions))
        overlaps = [overlap for session in sessions for overlap in timetable.book(session, by=actor)]
        return timetable.weeks, [self._warning(overlap) for overlap in overlaps]

    def _follow_in_timetable(
        self, actor: Actor, session: Session, was: tuple[datetime, datetime, SessionStatus], *, warns: bool,
    ) -> tuple[list[TimetableWeek], list[dict[str, Any]]]:
        """Keep the tutor's timetable up with a verb the session just took (``was``: its start,
        end and status before): a cancelled session gives its time back, a moved one moves."""
        if session.status is SessionStatus.CANCELLED and was[2] is not SessionStatus.CANCELLED:
            timetable = self._timetable(actor, session.tutor_id, was[:2])
            timetable.release(session, by=actor)
            return timetable.weeks, []
        if warns or (session.starts_at, session.ends_at) != was[:2]:
            timetable = self._timetable(actor, session.tutor_id, was[:2],
                                        (session.starts_at, session.ends_at))
            overlaps = timetable.book(session, by=actor)
            return timetable.weeks, [self._warning(overlap) for overlap in overlaps]
        return [], []

    @staticmethod
    def _warning(overlap: Overlap) -> dict[str, Any]:
        other = overlap.other
        return {"type": "OVERLAPPING_SESSION", "forSessionId": str(overlap.session_id),
                "sessionId": str(other.session_id), "title": other.title,
                "startsAt": other.starts_at.isoformat(), "endsAt": other.ends_at.isoformat()}

    # --- class cohorts ------------------------------------------------------------------

    def create_class(
        self, actor: Actor, *, name: str, subject: str, teacher_id: UUID, capacity: int = 20,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CLASS_MANAGE)

        def decide() -> Outcome:
            self._tutor(actor, teacher_id)
            cohort = ClassCohort.create(uuid4(), by=actor, name=name, subject=subject,
                                        teacher_id=teacher_id, capacity=capacity)
            return Outcome([cohort], self._class_body(cohort), 201)

        return self._execute(actor, decide, idempotency)

    def update_class(
        self, actor: Actor, class_id: UUID, *, name: str, subject: str, teacher_id: UUID,
        capacity: int, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CLASS_MANAGE)

        def decide() -> Outcome:
            cohort = self._find(ClassCohort, class_id, actor)
            self._tutor(actor, teacher_id)
            cohort.update(by=actor, name=name, subject=subject, teacher_id=teacher_id, capacity=capacity)
            return Outcome([cohort], self._class_body(cohort))

        return self._execute(actor, decide, idempotency)

    def cancel_class(
        self, actor: Actor, class_id: UUID, *, reason: str, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CLASS_MANAGE)

        def decide() -> Outcome:
            cohort = self._find(ClassCohort, class_id, actor)
            cohort.cancel(by=actor, reason=reason)
            return Outcome([cohort], self._class_body(cohort))

        return self._execute(actor, decide, idempotency)

    def add_class_member(
        self, actor: Actor, class_id: UUID, student_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CLASS_MANAGE)

        def decide() -> Outcome:
            cohort = self._find(ClassCohort, class_id, actor)
            student = self._find(Person, student_id, actor, field_name="studentId")
            if student.role is not Role.STUDENT:
                raise InvalidValue("only a STUDENT joins a class", field="studentId")
            cohort.add(student_id, by=actor)
            return Outcome([cohort], self._class_body(cohort), 201)

        return self._execute(actor, decide, idempotency)

    def remove_class_member(
        self, actor: Actor, class_id: UUID, student_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CLASS_MANAGE)

        def decide() -> Outcome:
            cohort = self._find(ClassCohort, class_id, actor)
            cohort.remove(student_id, by=actor)
            return Outcome([cohort], self._class_body(cohort))

        return self._execute(actor, decide, idempotency)

    def schedule_class_session(
        self, actor: Actor, class_id: UUID, plan: SessionPlan, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """A session for the whole class: its teacher, every member enrolled, in one commit."""
        require(actor, Permission.SESSION_SCHEDULE)

        def decide() -> Outcome:
            cohort, centre = self._class_to_schedule(actor, class_id)
            if cohort.has_session_at(plan.starts_at):
                raise RuleViolated("the class already has a session at that time")
            session = self._class_session(actor, cohort, centre, plan)
            cohort.sessions_scheduled([session], by=actor)
            weeks, warnings = self._book(actor, [session])
            return Outcome([session, cohort, *weeks],
                           {**self._session_body(session), "warnings": warnings}, 201)

        return self._execute(actor, decide, idempotency)

    def schedule_class_rule(
        self, actor: Actor, class_id: UUID, rule: WeeklyRule, plan: SessionPlan, *,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Every session of a weekly rule for the class, in one commit; times the class already
        has a session at are skipped. ``plan`` gives the title, mode and place."""
        require(actor, Permission.SESSION_SCHEDULE)

        def decide() -> Outcome:
            cohort, centre = self._class_to_schedule(actor, class_id)
            slots = weekly_starts(rule, centre.longest_session)
            sessions = [
                self._class_session(actor, cohort, centre, replace(
                    plan, starts_at=starts, ends_at=ends, time_zone=rule.time_zone))
                for starts, ends in slots if not cohort.has_session_at(starts)]
            if not sessions:
                raise RuleViolated("the class already has a session at every time of this rule")
            cohort.sessions_scheduled(sessions, by=actor, rule=rule)
            weeks, warnings = self._book(actor, sessions)
            body = {"classId": str(cohort.id), "sessionIds": [str(s.id) for s in sessions],
                    "skipped": len(slots) - len(sessions), "warnings": warnings}
            return Outcome([*sessions, cohort, *weeks], body, 201)

        return self._execute(actor, decide, idempotency)

    def centre_time_zone(self, actor: Actor) -> str:
        return self._centre(actor).time_zone

    def _class_to_schedule(self, actor: Actor, class_id: UUID) -> tuple[ClassCohort, Centre]:
        cohort = self._find(ClassCohort, class_id, actor)
        if cohort.cancelled:
            raise InvalidTransition("cannot schedule a session for a cancelled class")
        if actor.role is Role.TEACHER and cohort.teacher_id != actor.user_id:
            raise Forbidden("a TEACHER schedules sessions only for their own classes")
        return cohort, self._centre(actor)

    @staticmethod
    def _class_session(actor: Actor, cohort: ClassCohort, centre: Centre, plan: SessionPlan) -> Session:
        session = Session.schedule(
            uuid4(), by=actor, tutor_id=cohort.teacher_id, title=plan.title,
            starts_at=plan.starts_at, ends_at=plan.ends_at,
            time_zone=plan.time_zone or centre.time_zone, mode=plan.mode,
            meeting_link=plan.meeting_link, location=plan.location,
            capacity=max(plan.capacity, len(cohort.members)), class_id=cohort.id,
            longest=centre.longest_session)
        for student_id in sorted(cohort.members):
            session.enrol(student_id, by=actor)
        return session

    def _tutor(self, actor: Actor, person_id: UUID, *, field_name: str = "teacherId") -> Person:
        """Someone of the actor's centre who teaches, named by the body field ``field_name``."""
        tutor = self._find(Person, person_id, actor, field_name=field_name)
        if tutor.role not in TUTOR_ROLES:
            raise InvalidValue(f"{field_name} must name a TEACHER or CENTER_SUPERVISOR", field=field_name)
        return tutor

    @staticmethod
    def _class_body(cohort: ClassCohort) -> dict[str, Any]:
        return {"classId": str(cohort.id), "name": cohort.name, "teacherId": str(cohort.teacher_id),
                "capacity": cohort.capacity, "members": len(cohort.members),
                "status": "CANCELLED" if cohort.cancelled else "ACTIVE"}

    # --- exercises and work in a session ---------------------------------------------------

    def publish_exercise(
        self, actor: Actor, *, title: str, course_id: str, exercise_type: ExerciseType,
        difficulty: Difficulty, questions: Sequence[Question], instructions: str | None = None,
        time_limit_minutes: int | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.EXERCISE_PUBLISH)

        def decide() -> Outcome:
            self._centre(actor)
            exercise = Exercise.publish(
                uuid4(), actor.centre_id, by=actor, title=title, course_id=course_id,
                exercise_type=exercise_type, difficulty=difficulty, questions=questions,
                instructions=instructions, time_limit_minutes=time_limit_minutes)
            return Outcome([exercise], self._exercise_body(exercise), 201)

        return self._execute(actor, decide, idempotency)

    def retire_exercise(
        self, actor: Actor, exercise_id: UUID, *, reason: str, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.EXERCISE_PUBLISH)

        def decide() -> Outcome:
            exercise = self._find(Exercise, exercise_id, actor)
            exercise.retire(by=actor, reason=reason)
            return Outcome([exercise], self._exercise_body(exercise))

        return self._execute(actor, decide, idempotency)

    def assign_exercise(
        self, actor: Actor, session_id: UUID, exercise_id: UUID, *,
        student_ids: Sequence[UUID] | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Set an exercise for some students of a live session, or for all of them, at once."""
        require(actor, Permission.EXERCISE_ASSIGN)
        if student_ids is not None and len(set(student_ids)) != len(student_ids):
            raise InvalidValue("a student appears twice", field="studentIds")

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            exercise = self._find(Exercise, exercise_id, actor, field_name="exerciseId")
            chosen = sorted(session.roster) if student_ids is None else list(student_ids)
            if not chosen:
                raise RuleViolated("nobody is enrolled in this session")
            seats, work = [], []
            for index, student_id in enumerate(chosen):
                if not session.is_enrolled(student_id):
                    raise InvalidValue("the student is not enrolled in this session",
                                       field=f"studentIds[{index}]")
                seat = self._seat(session, student_id)
                work_id = seat.assign_exercise(session, exercise, by=actor)
                seats.append(seat)
                work.append({"studentId": str(student_id), "workId": str(work_id)})
            body = {"sessionId": str(session_id), "exerciseId": str(exercise_id), "title": exercise.title,
                    "autoGradable": exercise.auto_gradable, "work": work}
            return Outcome(seats, body, 201)

        return self._execute(actor, decide, idempotency)

    def start_exercise(
        self, actor: Actor, session_id: UUID, work_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._own_work(actor, session_id, work_id, idempotency,
                              lambda session, seat: seat.start_exercise(session, work_id, by=actor))

    def report_exercise_progress(
        self, actor: Actor, session_id: UUID, work_id: UUID, *, percent: int,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._own_work(actor, session_id, work_id, idempotency,
                              lambda session, seat: seat.report_progress(session, work_id, percent, by=actor))

    def submit_exercise(
        self, actor: Actor, session_id: UUID, work_id: UUID, *, answers: dict[str, str],
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        def submit(session: Session, seat: Seat) -> None:
            exercise = self._get(Exercise, seat.work[work_id].exercise_id)
            seat.submit_exercise(session, work_id, exercise, answers, by=actor)

        return self._own_work(actor, session_id, work_id, idempotency, submit)

    def grade_exercise(
        self, actor: Actor, session_id: UUID, work_id: UUID, *, score: float, feedback: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """A tutor marks handed-in work that has no answer key."""
        require(actor, Permission.WORK_GRADE)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            seat = self._seat_holding(session, [*session.roster, *session.removed_students],  # still gradable
                                      lambda seat: work_id in seat.work, "no such work in this session")
            seat.grade_exercise(work_id, by=actor, score=score, feedback=feedback)
            return Outcome([seat], self._work_body(seat, work_id))

        return self._execute(actor, decide, idempotency)

    def _own_work(
        self, actor: Actor, session_id: UUID, work_id: UUID, idempotency: IdempotencyKey | None,
        act: Callable[[Session, Seat], Any],
    ) -> CommandResult:
        """A student acts on their own work; nobody else's work is ever found."""
        require(actor, Permission.EXERCISE_WORK)

        def decide() -> Outcome:
            session = self._find(Session, session_id, actor)
            seat = self._seat(session, actor.user_id)
            if work_id not in seat.work:
                raise NotFound("no such work of yours in this session")
            act(session, seat)
            return Outcome([seat], self._work_body(seat, work_id))

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _exercise_body(exercise: Exercise) -> dict[str, Any]:
        return {"exerciseId": str(exercise.id), "title": exercise.title, "maxScore": exercise.max_score,
                "autoGradable": exercise.auto_gradable, "retired": exercise.retired}

    @staticmethod
    def _work_body(seat: Seat, work_id: UUID) -> dict[str, Any]:
        work = seat.work[work_id]
        return {"workId": str(work_id), "sessionId": str(seat.session_id), "studentId": str(seat.student_id),
                "exerciseId": str(work.exercise_id), "status": work.status.value, "progress": work.progress,
                "score": work.score, "maxScore": work.max_score, "xpAwarded": work.xp_awarded}

    # --- homework ------------------------------------------------------------------------

    def assign_homework(
        self, actor: Actor, student_id: UUID, *, title: str, exercise_ids: Sequence[UUID], due_at: datetime,
        session_id: UUID | None = None, teacher_id: UUID | None = None, notes: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Homework is marked by ``teacher_id``: by default the session's tutor, else whoever sets it."""
        require(actor, Permission.HOMEWORK_ASSIGN)

        def decide() -> Outcome:
            student = self._find(Person, student_id, actor, field_name="studentId")
            if student.role is not Role.STUDENT:
                raise InvalidValue("homework is set for a STUDENT", field="studentId")
            marker = teacher_id
            if session_id is not None:
                session = self._find(Session, session_id, actor, field_name="sessionId")
                if not session.is_enrolled(student_id):
                    raise InvalidValue("the student was not enrolled in that session", field="sessionId")
                marker = marker or session.tutor_id
            marker = marker or actor.user_id
            if actor.role is Role.TEACHER and marker != actor.user_id:
                raise Forbidden("a TEACHER sets homework that they mark themselves")
            self._tutor(actor, marker)
            exercises = [self._find(Exercise, i, actor, field_name="exerciseIds") for i in exercise_ids]
            homework = Homework.assign(uuid4(), actor.centre_id, student_id, by=actor, teacher_id=marker,
                                       title=title, exercises=exercises, due_at=due_at,
                                       session_id=session_id, notes=notes)
            return Outcome([homework], self._homework_body(homework), 201)

        return self._execute(actor, decide, idempotency)

    def start_homework(
        self, actor: Actor, homework_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._student_homework(actor, homework_id, idempotency, lambda h: h.start(by=actor))

    def submit_homework(
        self, actor: Actor, homework_id: UUID, *, answers: dict[UUID, dict[str, str]],
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        def submit(homework: Homework) -> None:
            exercises = {i: self._get(Exercise, i) for i in homework.exercise_ids}
            homework.submit(exercises, answers, by=actor)

        return self._student_homework(actor, homework_id, idempotency, submit)

    def grade_homework(
        self, actor: Actor, homework_id: UUID, *, score: float, feedback: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.WORK_GRADE)

        def decide() -> Outcome:
            homework = self._find(Homework, homework_id, actor)
            if actor.role is Role.TEACHER and homework.teacher_id != actor.user_id:
                raise Forbidden("a TEACHER grades only the homework they mark")
            homework.grade(by=actor, score=score, feedback=feedback)
            return Outcome([homework], self._homework_body(homework))

        return self._execute(actor, decide, idempotency)

    def _student_homework(
        self, actor: Actor, homework_id: UUID, idempotency: IdempotencyKey | None,
        act: Callable[[Homework], None],
    ) -> CommandResult:
        require(actor, Permission.HOMEWORK_WORK)

        def decide() -> Outcome:
            homework = self._find(Homework, homework_id, actor)
            if homework.student_id != actor.user_id:
                raise NotFound("no such homework")
            act(homework)
            return Outcome([homework], self._homework_body(homework))

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _homework_body(homework: Homework) -> dict[str, Any]:
        return {"homeworkId": str(homework.id), "studentId": str(homework.student_id),
                "teacherId": str(homework.teacher_id), "status": homework.status.value,
                "maxScore": homework.max_score, "dueAt": homework.due_at.isoformat()}

    # --- notes -------------------------------------------------------------------------

    def write_note(
        self, actor: Actor, student_id: UUID, *, content: str, visibility: NoteVisibility,
        session_id: UUID | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.NOTE_WRITE)

        def decide() -> Outcome:
            student = self._find(Person, student_id, actor, field_name="studentId")
            if student.role is not Role.STUDENT:
                raise InvalidValue("notes are written about students", field="studentId")
            if session_id is not None:
                self._find(Session, session_id, actor, field_name="sessionId")
            note = TutorNote.write(uuid4(), student_id, by=actor, content=content,
                                   visibility=visibility, session_id=session_id)
            return Outcome([note], self._note_body(note), 201)

        return self._execute(actor, decide, idempotency)

    def edit_note(
        self, actor: Actor, note_id: UUID, *, content: str, visibility: NoteVisibility | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.NOTE_WRITE)

        def decide() -> Outcome:
            note = self._find(TutorNote, note_id, actor)
            if note.author_id != actor.user_id and actor.role not in EDITORS_OF_ANY_NOTE:
                raise Forbidden("only the author (or a centre admin) edits a note")
            note.edit(by=actor, content=content, visibility=visibility)
            return Outcome([note], self._note_body(note))

        return self._execute(actor, decide, idempotency)

    def redact_note(
        self, actor: Actor, note_id: UUID, *, reason: str, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.NOTE_REDACT)

        def decide() -> Outcome:
            note = self._find(TutorNote, note_id, actor)
            note.redact(by=actor, reason=reason)
            return Outcome([note], self._note_body(note))

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _note_body(note: TutorNote) -> dict[str, Any]:
        return {"noteId": str(note.id), "studentId": str(note.student_id),
                "visibility": note.visibility.value, "redacted": note.redacted}

    # --- academic profiles ---------------------------------------------------------------

    def assess_subject(
        self, actor: Actor, student_id: UUID, *, course_id: str, school_grade: int,
        working_level: int, notes: str | None = None, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Record the grade a student is in at school and the level they work at in a course."""
        require(actor, Permission.ACADEMIC_LEVEL_SET)

        def decide() -> Outcome:
            profile = self._academic_profile(actor, student_id)
            first = course_id.strip() not in profile.subjects
            profile.assess(course_id, by=actor, school_grade=school_grade,
                           working_level=working_level, notes=notes)
            return Outcome([profile], self._subject_body(profile, course_id), 201 if first else 200)

        return self._execute(actor, decide, idempotency)

    def change_working_level(
        self, actor: Actor, student_id: UUID, *, course_id: str, level: int,
        change_type: LevelChangeType, reason: str, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.ACADEMIC_LEVEL_SET)

        def decide() -> Outcome:
            profile = self._academic_profile(actor, student_id)
            profile.change_working_level(course_id, by=actor, level=level, change_type=change_type,
                                         reason=reason)
            return Outcome([profile], self._subject_body(profile, course_id))

        return self._execute(actor, decide, idempotency)

    def assign_content(
        self, actor: Actor, student_id: UUID, *, course_id: str, reason: str,
        lesson_id: str | None = None, exercise_id: str | None = None, session_id: UUID | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Override the automatic content sequence of a course for one student."""
        require(actor, Permission.CONTENT_ASSIGN)

        def decide() -> Outcome:
            profile = self._academic_profile(actor, student_id)
            session = None
            if session_id is not None:
                session = self._find(Session, session_id, actor, field_name="sessionId")
                if not session.is_enrolled(student_id):
                    raise InvalidValue("the student is not enrolled in this session", field="sessionId")
            assignment_id = profile.assign_content(course_id, by=actor, reason=reason, lesson_id=lesson_id,
                                                   exercise_id=exercise_id, session_id=session_id)
            assignment = profile.assignments[assignment_id]
            moved = False
            if session is not None and assignment.lesson_id is not None and session.status in (
                    SessionStatus.SCHEDULED, SessionStatus.LIVE):
                # The lesson assigned for a session that is still to run is the one the student
                # works on in it: the session's roster follows, in the same commit.
                require(actor, Permission.LESSON_CHANGE)
                if actor.role is Role.TEACHER and session.tutor_id != actor.user_id:
                    raise Forbidden("a TEACHER changes lessons only in their own sessions")
                moved = session.change_lesson(student_id, by=actor, lesson_id=assignment.lesson_id,
                                              course_id=assignment.course_id, reason=reason,
                                              assignment_id=assignment_id)
            body = self._assignment_body(profile, assignment_id) | {"lessonChanged": moved}
            return Outcome([profile, session] if session else [profile], body, 201)

        return self._execute(actor, decide, idempotency)

    def withdraw_content_assignment(
        self, actor: Actor, student_id: UUID, assignment_id: UUID, *, reason: str,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        require(actor, Permission.CONTENT_ASSIGN)

        def decide() -> Outcome:
            profile = self._academic_profile(actor, student_id)
            try:
                profile.withdraw_assignment(assignment_id, by=actor, reason=reason)
            except AssignmentNotFound as error:
                raise NotFound(str(error)) from None
            return Outcome([profile], self._assignment_body(profile, assignment_id))

        return self._execute(actor, decide, idempotency)

    def _academic_profile(self, actor: Actor, student_id: UUID) -> AcademicProfile:
        """The profile of a STUDENT of the actor's centre; anyone else is not found."""
        student = self._find(Person, student_id, actor)
        if student.role is not Role.STUDENT:
            raise NotFound("no such student")
        try:
            return self._get(AcademicProfile, academic_profile_id(student_id))
        except NotFound:
            return AcademicProfile.of(student_id, actor.centre_id)

    @staticmethod
    def _subject_body(profile: AcademicProfile, course_id: str) -> dict[str, Any]:
        subject = profile.subjects[course_id.strip()]
        return {"studentId": str(profile.student_id), "courseId": subject.course_id,
                "schoolGrade": subject.school_grade, "workingLevel": subject.working_level}

    @staticmethod
    def _assignment_body(profile: AcademicProfile, assignment_id: UUID) -> dict[str, Any]:
        assignment = profile.assignments[assignment_id]
        return {"assignmentId": str(assignment.id), "studentId": str(profile.student_id),
                "courseId": assignment.course_id, "lessonId": assignment.lesson_id,
                "exerciseId": assignment.exercise_id, "active": assignment.active,
                "replaces": str(assignment.replaces) if assignment.replaces else None}

    # --- catch-ups ---------------------------------------------------------------------

    def assign_catch_up(
        self, actor: Actor, session_id: UUID, student_id: UUID, *, due_at: datetime, reason: str,
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """Staff set catch-up work for a student of a session, whatever the reason."""
        require(actor, Permission.CATCH_UP_ASSIGN)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            catch_up = CatchUp.assign(uuid4(), session, student_id, by=actor, due_at=due_at,
                                      reason=reason)
            return Outcome([catch_up], self._catch_up_body(catch_up), 201)

        return self._execute(actor, decide, idempotency)

    def start_catch_up(
        self, actor: Actor, catch_up_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._progress_catch_up(actor, catch_up_id, idempotency, lambda c: c.start(by=actor))

    def complete_catch_up(
        self, actor: Actor, catch_up_id: UUID, *, idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._progress_catch_up(actor, catch_up_id, idempotency, lambda c: c.complete(by=actor))

    def _progress_catch_up(
        self, actor: Actor, catch_up_id: UUID, idempotency: IdempotencyKey | None,
        act: Callable[[CatchUp], None],
    ) -> CommandResult:
        require(actor, Permission.CATCH_UP_PROGRESS)

        def decide() -> Outcome:
            catch_up = self._find(CatchUp, catch_up_id, actor)
            if actor.role is Role.STUDENT and catch_up.student_id != actor.user_id:
                raise NotFound("no such catch-up")
            if actor.role is Role.TEACHER:
                self._session_run_by(actor, catch_up.session_id)
            act(catch_up)
            return Outcome([catch_up], self._catch_up_body(catch_up))

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _catch_up_body(catch_up: CatchUp) -> dict[str, Any]:
        return {"catchUpId": str(catch_up.id), "sessionId": str(catch_up.session_id),
                "studentId": str(catch_up.student_id), "status": catch_up.status.value,
                "dueAt": catch_up.due_at.isoformat()}

    # --- reading aggregates ------------------------------------------------------------

    def _get(self, cls: type[A], aggregate_id: UUID) -> A:
        try:
            aggregate = self.repository.get(aggregate_id, projector_func=cls.project)
        except (AggregateNotFoundError, KeyError):
            raise NotFound(f"no such {cls.__name__.lower()}") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no such {cls.__name__.lower()}")
        return aggregate

    def _get_directory(self, cls: type[A], aggregate_id: UUID) -> A:
        cached = self._directory.get(aggregate_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now and isinstance(cached[1], cls):
            return cached[1]
        aggregate = self._get(cls, aggregate_id)
        if len(self._directory) > 10_000:
            self._directory.clear()
        self._directory[aggregate_id] = (now + self.DIRECTORY_CACHE_SECONDS, aggregate)
        return aggregate

    def _find(self, cls: type[A], aggregate_id: UUID, actor: Actor, *, field_name: str | None = None) -> A:
        """Load an aggregate of the actor's centre; a missing one named by a body field is a 422."""
        try:
            if cls in (Centre, Person):
                aggregate = self._get_directory(cls, aggregate_id)
            else:
                aggregate = self._get(cls, aggregate_id)
            if aggregate.centre_id != actor.centre_id:
                raise NotFound(f"no such {cls.__name__.lower()}")
        except NotFound as error:
            if field_name is not None:
                raise InvalidValue(f"{error} in this centre", field=field_name) from None
            raise
        return aggregate

    def _centre(self, actor: Actor) -> Centre:
        try:
            return self._get_directory(Centre, centre_aggregate_id(actor.centre_id))
        except NotFound:
            raise NotFound(f"centre {actor.centre_id!r} is not registered") from None

    def _seat(self, session: Session, student_id: UUID) -> Seat:
        try:
            return self._get(Seat, seat_id(session.id, student_id))
        except NotFound:
            return Seat.of(session, student_id)

    def _session_run_by(self, actor: Actor, session_id: UUID) -> Session:
        """A session of the actor's centre that the actor may run: a TEACHER only their own."""
        session = self._find(Session, session_id, actor)
        if actor.role is Role.TEACHER and session.tutor_id != actor.user_id:
            raise Forbidden("a TEACHER may act only on their own sessions")
        return session

    def _session_verb(
        self,
        actor: Actor,
        session_id: UUID,
        permission: Permission,
        idempotency: IdempotencyKey | None,
        verb: Callable[[Session], None],
        *,
        warns: bool = False,
    ) -> CommandResult:
        """``warns``: the verb may move the session, and the answer carries overlap warnings."""
        require(actor, permission)

        def decide() -> Outcome:
            session = self._session_run_by(actor, session_id)
            was = (session.starts_at, session.ends_at, session.status)
            verb(session)
            weeks, warnings = self._follow_in_timetable(actor, session, was, warns=warns)
            body = self._session_body(session)
            if warns:
                body["warnings"] = warnings
            return Outcome([session, *weeks], body)

        return self._execute(actor, decide, idempotency)

    @staticmethod
    def _session_body(session: Session) -> dict[str, Any]:
        return {
            "sessionId": str(session.id),
            "status": session.status.value,
            "tutorId": str(session.tutor_id),
            "enrolled": len(session.roster),
            "capacity": session.capacity,
            "startsAt": session.starts_at.isoformat(),
            "endsAt": session.ends_at.isoformat(),
            "mode": session.mode.value,
        }

    # --- appending ---------------------------------------------------------------------

    def _execute(
        self,
        actor: Actor,
        decide: Callable[[], Outcome],
        idempotency: IdempotencyKey | None,
        *,
        on_conflict: str | None = None,
    ) -> CommandResult:
        if idempotency is not None:
            replay = self._replay(actor, idempotency)
            if replay is not None:
                return replay
        for attempt in range(1, MAX_ATTEMPTS + 1):
            outcome = decide()
            pending: list[Aggregate] = [a for a in outcome.aggregates if a.has_changes]
            if idempotency is not None:
                pending.append(CommandReceipt.record(
                    actor, idempotency, outcome.status_code, outcome.body))
            try:
                recordings = self.save(*pending) if pending else []
            except IntegrityError:
                if idempotency is not None:
                    replay = self._replay(actor, idempotency)
                    if replay is not None:
                        return replay
                if on_conflict is not None and all(a.version == 1 for a in pending):
                    raise RuleViolated(on_conflict) from None
                log.info("command.conflict", attempt=attempt)
                continue
            for aggregate in pending:
                if aggregate.id in self._directory:
                    self._directory[aggregate.id] = (time.monotonic() + self.DIRECTORY_CACHE_SECONDS, aggregate)
            position = recordings[-1].notification.id if recordings else self.position
            return CommandResult(outcome.status_code, outcome.body, position)
        raise ConcurrentUpdate("the session changed while the command ran; try again")

    def _replay(self, actor: Actor, idempotency: IdempotencyKey) -> CommandResult | None:
        try:
            receipt = self._get(CommandReceipt, receipt_id(actor, idempotency.key))
        except NotFound:
            return None
        if not receipt.matches(idempotency):
            raise KeyReused("this Idempotency-Key was already used for a different request")
        return CommandResult(receipt.status_code, receipt.body, self.position, replayed=True)


def open_centres(env: Mapping[str, str] | None = None) -> TutoringCentres:
    return TutoringCentres(env)
