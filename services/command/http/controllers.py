"""HTTP adapters of the command handlers: one controller per resource."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, Response, delete, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from services.command.application import (
    AttendanceMark,
    CommandResult,
    SeriesStudent,
    SessionPlan,
    TutoringCentres,
)
from services.command.domain.aggregate import InvalidValue
from services.command.http import schemas
from services.command.idempotency import MAX_KEY_LENGTH, IdempotencyKey
from services.command.metrics import COMMANDS
from shared.events import WeeklyRule
from shared.tenancy import Actor, Permission

POSITION_HEADER = "X-Tutorpulse-Position"
IdempotencyHeader = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key",
    required=False,
    description="Retrying with the same key returns the first result and appends nothing.",
)]


async def _run(
    request: Request[Any, Any, Any],
    name: str,
    idempotency_key: str | None,
    command: Callable[[IdempotencyKey | None], CommandResult],
) -> Response[dict[str, Any]]:
    key = None
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
            raise InvalidValue(f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters",
                               field="Idempotency-Key")
        digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
        digest.update(await request.body())
        key = IdempotencyKey(idempotency_key, digest.hexdigest())
    result = await anyio.to_thread.run_sync(command, key)
    COMMANDS.labels(command=name, outcome="replayed" if result.replayed else "ok").inc()
    headers = {POSITION_HEADER: str(result.position)}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response({**result.body, "position": result.position},
                    status_code=result.status_code, headers=headers)


def _weekly_rule(data: schemas.ScheduleClassRule, centres: TutoringCentres, actor: Actor) -> WeeklyRule:
    """The rule in the body; without a time zone, in the centre's."""
    return WeeklyRule(days_of_week=sorted(set(data.days_of_week)), start_time=data.start_time,
                      duration_minutes=data.duration_minutes, first_date=data.first_date, weeks=data.weeks,
                      time_zone=data.time_zone or centres.centre_time_zone(actor))


def _rule_plan(data: schemas.ScheduleClassRule, *, tutor_id: UUID | None = None) -> SessionPlan:
    """What every session of a weekly rule shares; the rule gives each one its times."""
    first = datetime.combine(data.first_date, datetime.min.time(), UTC)
    return SessionPlan(title=data.title, starts_at=first, ends_at=first, mode=data.mode, tutor_id=tutor_id,
                       meeting_link=data.meeting_link, location=data.location, capacity=data.capacity)


class CentreController(Controller):
    path = "/api/v1/centres"
    tags = ["centres"]

    @post("/", summary="Register a centre (SUPER_ADMIN)",
          opt={"permission": Permission.CENTRE_REGISTER})
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.RegisterCentre], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        slas = {p.value: m for p, m in data.help_sla_minutes.items()} if data.help_sla_minutes else None
        return await _run(request, "register_centre", idempotency_key, lambda key: centres.register_centre(
            actor, data.centre_id, name=data.name, time_zone=data.time_zone,
            help_sla_minutes=slas, idempotency=key))


    @post("/{centre_id:str}/help-slas", status_code=200,
          summary="Change within how many minutes help requests of each priority are due (CENTER_ADMIN)",
          opt={"permission": Permission.CENTRE_CONFIGURE})
    async def help_slas(
        self, request: Request[Any, Any, Any], centre_id: FromPath[str], data: JSONBody[schemas.ChangeHelpSlas],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        minutes = {p.value: m for p, m in data.help_sla_minutes.items()}
        return await _run(request, "change_help_slas", idempotency_key, lambda key: centres.change_help_slas(
            actor, centre_id, minutes, idempotency=key))


    @post("/{centre_id:str}/session-length", status_code=200,
          summary="Change how long a session of the centre may last (CENTER_ADMIN)",
          opt={"permission": Permission.CENTRE_CONFIGURE})
    async def session_length(
        self, request: Request[Any, Any, Any], centre_id: FromPath[str],
        data: JSONBody[schemas.ChangeSessionLength], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "change_max_session_length", idempotency_key,
                          lambda key: centres.change_max_session_length(
                              actor, centre_id, data.max_session_minutes, idempotency=key))


class PeopleController(Controller):
    path = "/api/v1/people"
    tags = ["people"]

    @post("/", summary="Register a person of the caller's centre",
          opt={"permission": Permission.PERSON_REGISTER})
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.RegisterPerson], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "register_person", idempotency_key, lambda key: centres.register_person(
            actor, name=data.name, email=data.email, role=data.role,
            guardian_id=data.guardian_id, idempotency=key))


class SessionController(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]

    @post("/", summary="Schedule a session",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def schedule(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.ScheduleSession], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        plan = SessionPlan(
            title=data.title, starts_at=data.starts_at, ends_at=data.ends_at, mode=data.mode,
            tutor_id=data.tutor_id, time_zone=data.time_zone, meeting_link=data.meeting_link,
            location=data.location, capacity=data.capacity, class_id=data.class_id,
        )
        return await _run(request, "schedule_session", idempotency_key,
                          lambda key: centres.schedule_session(actor, plan, idempotency=key))

    @post("/series", summary="Weekly sessions for a tutor, each with the same students",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def schedule_series(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.ScheduleSeries],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        plan = _rule_plan(data, tutor_id=data.tutor_id)
        students = [SeriesStudent(s.student_id, s.course_id, s.lesson_id) for s in data.students]

        def schedule(key: IdempotencyKey | None) -> CommandResult:
            rule = _weekly_rule(data, centres, actor)
            return centres.schedule_series(actor, rule, plan, students, idempotency=key)

        return await _run(request, "schedule_series", idempotency_key, schedule)

    @post("/series/{series_id:uuid}/cancel", status_code=200,
          summary="Cancel every session of a weekly series still to come, with a reason",
          opt={"permission": Permission.SESSION_CANCEL})
    async def cancel_series(
        self, request: Request[Any, Any, Any], series_id: FromPath[UUID], data: JSONBody[schemas.CancelSession],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "cancel_series", idempotency_key, lambda key: centres.cancel_series(
            actor, series_id, reason=data.reason, idempotency=key))

    @post("/{session_id:uuid}/start", summary="Start a scheduled session (it goes LIVE)",
          opt={"permission": Permission.SESSION_RUN})
    async def start(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "start_session", idempotency_key,
                          lambda key: centres.start_session(actor, session_id, idempotency=key))

    @post("/{session_id:uuid}/end", summary="End a live session (it is COMPLETED)",
          opt={"permission": Permission.SESSION_RUN})
    async def end(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "end_session", idempotency_key,
                          lambda key: centres.end_session(actor, session_id, idempotency=key))

    @post("/{session_id:uuid}/cancel", summary="Cancel a scheduled session, with a reason",
          opt={"permission": Permission.SESSION_CANCEL})
    async def cancel(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], data: JSONBody[schemas.CancelSession],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "cancel_session", idempotency_key, lambda key: centres.cancel_session(
            actor, session_id, reason=data.reason, idempotency=key))

    @post("/{session_id:uuid}/reschedule", status_code=200, summary="Move a scheduled session",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def reschedule(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID],
        data: JSONBody[schemas.RescheduleSession], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "reschedule_session", idempotency_key, lambda key: centres.reschedule_session(
            actor, session_id, starts_at=data.starts_at, ends_at=data.ends_at, reason=data.reason,
            idempotency=key))

    @post("/{session_id:uuid}/mode", status_code=200, summary="Switch ONLINE / PHYSICAL / HYBRID",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def change_mode(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID],
        data: JSONBody[schemas.ChangeSessionMode], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "change_session_mode", idempotency_key, lambda key: centres.change_session_mode(
            actor, session_id, mode=data.mode, meeting_link=data.meeting_link, location=data.location,
            idempotency=key))

    @post("/{session_id:uuid}/extend", status_code=200, summary="Run a live session longer",
          opt={"permission": Permission.SESSION_RUN})
    async def extend(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID],
        data: JSONBody[schemas.ExtendSession], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "extend_session", idempotency_key, lambda key: centres.extend_session(
            actor, session_id, minutes=data.minutes, idempotency=key))

    @post("/{session_id:uuid}/enrolments", summary="Enrol a student with their own course and lesson",
          opt={"permission": Permission.ENROLMENT_MANAGE})
    async def enrol(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], data: JSONBody[schemas.EnrolStudent],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "enrol_student", idempotency_key, lambda key: centres.enrol_student(
            actor, session_id, data.student_id, course_id=data.course_id,
            lesson_id=data.lesson_id, idempotency=key))

    @post("/{session_id:uuid}/enrolments/{student_id:uuid}/lesson", status_code=200,
          summary="Move an enrolled student to another lesson (while SCHEDULED or LIVE)",
          opt={"permission": Permission.LESSON_CHANGE})
    async def change_lesson(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], student_id: FromPath[UUID],
        data: JSONBody[schemas.ChangeLesson], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "change_lesson", idempotency_key, lambda key: centres.change_lesson(
            actor, session_id, student_id, lesson_id=data.lesson_id, course_id=data.course_id,
            reason=data.reason, idempotency=key))

    @delete("/{session_id:uuid}/enrolments/{student_id:uuid}", status_code=200,
            summary="Remove a student from the session",
          opt={"permission": Permission.ENROLMENT_MANAGE})
    async def remove(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], student_id: FromPath[UUID], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
        reason: Annotated[str | None, QueryParameter(required=False, max_length=500)] = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "remove_student", idempotency_key, lambda key: centres.remove_student(
            actor, session_id, student_id, reason=reason, idempotency=key))

    @post("/{session_id:uuid}/help-requests", summary="Ask for help (a STUDENT, while LIVE)",
          opt={"permission": Permission.HELP_REQUEST_RAISE, "rate_limit": "help"})
    async def raise_help(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], data: JSONBody[schemas.RaiseHelpRequest],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "raise_help_request", idempotency_key,
                          lambda key: centres.raise_help_request(
                              actor, session_id, priority=data.priority,
                              exercise_id=data.exercise_id, message=data.message, idempotency=key))


class LiveSessionController(Controller):
    """What happens in a live session: who is there, and whom the tutor is teaching."""

    path = "/api/v1/sessions/{session_id:uuid}"
    tags = ["live session"]

    @post("/presence", status_code=200, summary="A student's client reports presence",
          opt={"permission": Permission.PRESENCE_RECORD})
    async def presence(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID],
        data: JSONBody[schemas.RecordPresence], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "record_presence", idempotency_key, lambda key: centres.record_presence(
            actor, session_id, data.event, idempotency=key))

    @post("/students/{student_id:uuid}/mode", status_code=200,
          summary="The tutor teaches this student, or lets them work (TEACH / OBSERVE)",
          opt={"permission": Permission.TEACHING_SWITCH})
    async def mode(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], student_id: FromPath[UUID],
        data: JSONBody[schemas.SwitchTeachingMode], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "switch_teaching_mode", idempotency_key,
                          lambda key: centres.switch_teaching_mode(
                              actor, session_id, student_id, data.mode, idempotency=key))


class HelpRequestController(Controller):
    path = "/api/v1/sessions/{session_id:uuid}/help-requests/{request_id:uuid}"
    tags = ["help requests"]

    @post("/acknowledge", status_code=200, summary="The tutor has seen it (PENDING → ACKNOWLEDGED)",
          opt={"permission": Permission.HELP_REQUEST_HANDLE})
    async def acknowledge(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], request_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "acknowledge_help_request", idempotency_key,
                          lambda key: centres.acknowledge_help_request(
                              actor, session_id, request_id, idempotency=key))

    @post("/start", status_code=200, summary="The tutor is helping now (→ IN_PROGRESS)",
          opt={"permission": Permission.HELP_REQUEST_HANDLE})
    async def start(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], request_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "start_helping", idempotency_key,
                          lambda key: centres.start_helping(actor, session_id, request_id, idempotency=key))

    @post("/resolve", status_code=200, summary="Resolved, with the tutor's response (→ RESOLVED)",
          opt={"permission": Permission.HELP_REQUEST_HANDLE})
    async def resolve(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], request_id: FromPath[UUID],
        data: JSONBody[schemas.ResolveHelpRequest], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "resolve_help_request", idempotency_key,
                          lambda key: centres.resolve_help_request(
                              actor, session_id, request_id, response=data.response, idempotency=key))

    @post("/cancel", status_code=200, summary="The student withdraws it (→ CANCELLED)",
          opt={"permission": Permission.HELP_REQUEST_RAISE})
    async def cancel(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], request_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "cancel_help_request", idempotency_key,
                          lambda key: centres.cancel_help_request(actor, session_id, request_id, idempotency=key))


class CatchUpController(Controller):
    path = "/api/v1/catch-ups"
    tags = ["catch-ups"]

    @post("/", summary="Set catch-up work for a student of a session",
          opt={"permission": Permission.CATCH_UP_ASSIGN})
    async def assign(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.AssignCatchUp],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "assign_catch_up", idempotency_key, lambda key: centres.assign_catch_up(
            actor, data.session_id, data.student_id, due_at=data.due_at, reason=data.reason,
            idempotency=key))

    @post("/{catch_up_id:uuid}/start", status_code=200, summary="Begin the work (PENDING → IN_PROGRESS)",
          opt={"permission": Permission.CATCH_UP_PROGRESS})
    async def start(
        self, request: Request[Any, Any, Any], catch_up_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "start_catch_up", idempotency_key,
                          lambda key: centres.start_catch_up(actor, catch_up_id, idempotency=key))

    @post("/{catch_up_id:uuid}/complete", status_code=200, summary="The work is done (→ COMPLETED)",
          opt={"permission": Permission.CATCH_UP_PROGRESS})
    async def complete(
        self, request: Request[Any, Any, Any], catch_up_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "complete_catch_up", idempotency_key,
                          lambda key: centres.complete_catch_up(actor, catch_up_id, idempotency=key))


class NoteController(Controller):
    path = "/api/v1"
    tags = ["notes"]

    @post("/students/{student_id:uuid}/notes", summary="Write a note about a student",
          opt={"permission": Permission.NOTE_WRITE})
    async def write(
        self, request: Request[Any, Any, Any], student_id: FromPath[UUID], data: JSONBody[schemas.WriteNote],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "write_note", idempotency_key, lambda key: centres.write_note(
            actor, student_id, content=data.content, visibility=data.visibility,
            session_id=data.session_id, idempotency=key))

    @post("/notes/{note_id:uuid}/edit", status_code=200, summary="Rewrite a note (its author)",
          opt={"permission": Permission.NOTE_WRITE})
    async def edit(
        self, request: Request[Any, Any, Any], note_id: FromPath[UUID], data: JSONBody[schemas.EditNote],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "edit_note", idempotency_key, lambda key: centres.edit_note(
            actor, note_id, content=data.content, visibility=data.visibility, idempotency=key))

    @post("/notes/{note_id:uuid}/redact", status_code=200, summary="Remove a note from view (an admin)",
          opt={"permission": Permission.NOTE_REDACT})
    async def redact(
        self, request: Request[Any, Any, Any], note_id: FromPath[UUID], data: JSONBody[schemas.RedactNote],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "redact_note", idempotency_key, lambda key: centres.redact_note(
            actor, note_id, reason=data.reason, idempotency=key))


class ClassController(Controller):
    path = "/api/v1/classes"
    tags = ["classes"]

    @post("/", summary="Create a class cohort", opt={"permission": Permission.CLASS_MANAGE})
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.ClassDetails],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "create_class", idempotency_key, lambda key: centres.create_class(
            actor, name=data.name, subject=data.subject, teacher_id=data.teacher_id,
            capacity=data.capacity, idempotency=key))

    @post("/{class_id:uuid}/update", status_code=200, summary="Rename, re-assign or resize a class",
          opt={"permission": Permission.CLASS_MANAGE})
    async def update(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID], data: JSONBody[schemas.ClassDetails],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "update_class", idempotency_key, lambda key: centres.update_class(
            actor, class_id, name=data.name, subject=data.subject, teacher_id=data.teacher_id,
            capacity=data.capacity, idempotency=key))

    @post("/{class_id:uuid}/cancel", status_code=200, summary="Cancel a class",
          opt={"permission": Permission.CLASS_MANAGE})
    async def cancel(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID], data: JSONBody[schemas.CancelClass],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "cancel_class", idempotency_key, lambda key: centres.cancel_class(
            actor, class_id, reason=data.reason, idempotency=key))

    @post("/{class_id:uuid}/members", summary="Add a student (capacity enforced)",
          opt={"permission": Permission.CLASS_MANAGE})
    async def add_member(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID], data: JSONBody[schemas.AddMember],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "add_class_member", idempotency_key, lambda key: centres.add_class_member(
            actor, class_id, data.student_id, idempotency=key))

    @delete("/{class_id:uuid}/members/{student_id:uuid}", status_code=200, summary="Remove a student",
            opt={"permission": Permission.CLASS_MANAGE})
    async def remove_member(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID], student_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "remove_class_member", idempotency_key,
                          lambda key: centres.remove_class_member(actor, class_id, student_id, idempotency=key))

    @post("/{class_id:uuid}/sessions", summary="Schedule a session for the whole class",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def schedule(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID],
        data: JSONBody[schemas.ScheduleClassSession], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        plan = SessionPlan(title=data.title, starts_at=data.starts_at, ends_at=data.ends_at,
                           mode=data.mode, time_zone=data.time_zone, meeting_link=data.meeting_link,
                           location=data.location, capacity=data.capacity)
        return await _run(request, "schedule_class_session", idempotency_key,
                          lambda key: centres.schedule_class_session(actor, class_id, plan, idempotency=key))

    @post("/{class_id:uuid}/schedule-rules", summary="Weekly sessions for the class, for some weeks",
          opt={"permission": Permission.SESSION_SCHEDULE})
    async def schedule_rule(
        self, request: Request[Any, Any, Any], class_id: FromPath[UUID],
        data: JSONBody[schemas.ScheduleClassRule], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        plan = _rule_plan(data)

        def schedule(key: IdempotencyKey | None) -> CommandResult:
            rule = _weekly_rule(data, centres, actor)
            return centres.schedule_class_rule(actor, class_id, rule, plan, idempotency=key)

        return await _run(request, "schedule_class_rule", idempotency_key, schedule)


class AttendanceController(Controller):
    path = "/api/academic/attendance"
    tags = ["attendance"]

    @post("/bulk", status_code=200, summary="Mark several students of a session at once",
          opt={"permission": Permission.ATTENDANCE_MARK})
    async def bulk(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.BulkAttendance], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        marks = [AttendanceMark(r.student_id, r.status, r.notes) for r in data.records]
        return await _run(request, "mark_attendance", idempotency_key, lambda key: centres.mark_attendance(
            actor, data.session_id, marks, idempotency=key))


class ExerciseController(Controller):
    path = "/api/v1/exercises"
    tags = ["exercises"]

    @post("/", summary="Add an exercise, with its answer key, to the centre's catalogue",
          opt={"permission": Permission.EXERCISE_PUBLISH})
    async def publish(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.PublishExercise],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "publish_exercise", idempotency_key, lambda key: centres.publish_exercise(
            actor, title=data.title, course_id=data.course_id, exercise_type=data.exercise_type,
            difficulty=data.difficulty, questions=data.questions, instructions=data.instructions,
            time_limit_minutes=data.time_limit_minutes, idempotency=key))

    @post("/{exercise_id:uuid}/retire", status_code=200, summary="Stop the exercise being set",
          opt={"permission": Permission.EXERCISE_PUBLISH})
    async def retire(
        self, request: Request[Any, Any, Any], exercise_id: FromPath[UUID],
        data: JSONBody[schemas.RetireExercise], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "retire_exercise", idempotency_key, lambda key: centres.retire_exercise(
            actor, exercise_id, reason=data.reason, idempotency=key))


class WorkController(Controller):
    """Exercise work in a live session: the tutor sets it, the student does it, the tutor marks it."""

    path = "/api/v1/sessions/{session_id:uuid}/work"
    tags = ["exercise work"]

    @post("/", summary="Set an exercise for some students, or all, of a live session",
          opt={"permission": Permission.EXERCISE_ASSIGN})
    async def assign(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID],
        data: JSONBody[schemas.AssignExercise], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "assign_exercise", idempotency_key, lambda key: centres.assign_exercise(
            actor, session_id, data.exercise_id, student_ids=data.student_ids, idempotency=key))

    @post("/{work_id:uuid}/start", status_code=200, summary="The student begins (ASSIGNED → IN_PROGRESS)",
          opt={"permission": Permission.EXERCISE_WORK})
    async def start(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], work_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "start_exercise", idempotency_key, lambda key: centres.start_exercise(
            actor, session_id, work_id, idempotency=key))

    @post("/{work_id:uuid}/progress", status_code=200, summary="How far the student is (0-99 %)",
          opt={"permission": Permission.EXERCISE_WORK})
    async def progress(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], work_id: FromPath[UUID],
        data: JSONBody[schemas.ReportProgress], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "report_exercise_progress", idempotency_key,
                          lambda key: centres.report_exercise_progress(
                              actor, session_id, work_id, percent=data.percent, idempotency=key))

    @post("/{work_id:uuid}/submit", status_code=200,
          summary="Hand in the answers; marked at once where the exercise has an answer key",
          opt={"permission": Permission.EXERCISE_WORK})
    async def submit(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], work_id: FromPath[UUID],
        data: JSONBody[schemas.SubmitAnswers], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "submit_exercise", idempotency_key, lambda key: centres.submit_exercise(
            actor, session_id, work_id, answers=data.answers, idempotency=key))

    @post("/{work_id:uuid}/grade", status_code=200, summary="The tutor marks handed-in work, with feedback",
          opt={"permission": Permission.WORK_GRADE})
    async def grade(
        self, request: Request[Any, Any, Any], session_id: FromPath[UUID], work_id: FromPath[UUID],
        data: JSONBody[schemas.GradeWork], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "grade_exercise", idempotency_key, lambda key: centres.grade_exercise(
            actor, session_id, work_id, score=data.score, feedback=data.feedback, idempotency=key))


class HomeworkController(Controller):
    path = "/api/v1/homework"
    tags = ["homework"]

    @post("/", summary="Set homework (catalogue exercises, a due time) for a student",
          opt={"permission": Permission.HOMEWORK_ASSIGN})
    async def assign(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.AssignHomework],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "assign_homework", idempotency_key, lambda key: centres.assign_homework(
            actor, data.student_id, title=data.title, exercise_ids=data.exercise_ids, due_at=data.due_at,
            session_id=data.session_id, teacher_id=data.teacher_id, notes=data.notes, idempotency=key))

    @post("/{homework_id:uuid}/start", status_code=200, summary="The student begins it",
          opt={"permission": Permission.HOMEWORK_WORK})
    async def start(
        self, request: Request[Any, Any, Any], homework_id: FromPath[UUID],
        actor: NamedDependency[Actor], centres: NamedDependency[TutoringCentres],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "start_homework", idempotency_key, lambda key: centres.start_homework(
            actor, homework_id, idempotency=key))

    @post("/{homework_id:uuid}/submit", status_code=200,
          summary="Hand in answers per exercise (on time or late); auto-marked where possible",
          opt={"permission": Permission.HOMEWORK_WORK})
    async def submit(
        self, request: Request[Any, Any, Any], homework_id: FromPath[UUID],
        data: JSONBody[schemas.SubmitHomework], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "submit_homework", idempotency_key, lambda key: centres.submit_homework(
            actor, homework_id, answers=data.answers, idempotency=key))

    @post("/{homework_id:uuid}/grade", status_code=200, summary="The tutor grades it, with feedback",
          opt={"permission": Permission.WORK_GRADE})
    async def grade(
        self, request: Request[Any, Any, Any], homework_id: FromPath[UUID],
        data: JSONBody[schemas.GradeWork], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "grade_homework", idempotency_key, lambda key: centres.grade_homework(
            actor, homework_id, score=data.score, feedback=data.feedback, idempotency=key))
class AcademicProfileController(Controller):
    path = "/api/v1/students/{student_id:uuid}"
    tags = ["academic profiles"]

    @post("/assessments", summary="Assess a subject: school grade and working level",
          opt={"permission": Permission.ACADEMIC_LEVEL_SET})
    async def assess(
        self, request: Request[Any, Any, Any], student_id: FromPath[UUID],
        data: JSONBody[schemas.AssessSubject], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "assess_subject", idempotency_key, lambda key: centres.assess_subject(
            actor, student_id, course_id=data.course_id, school_grade=data.school_grade,
            working_level=data.working_level, notes=data.notes, idempotency=key))

    @post("/working-level", status_code=200, summary="Change the working level of an assessed subject",
          opt={"permission": Permission.ACADEMIC_LEVEL_SET})
    async def change_working_level(
        self, request: Request[Any, Any, Any], student_id: FromPath[UUID],
        data: JSONBody[schemas.ChangeWorkingLevel], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "change_working_level", idempotency_key,
                          lambda key: centres.change_working_level(
                              actor, student_id, course_id=data.course_id, level=data.level,
                              change_type=data.change_type, reason=data.reason, idempotency=key))

    @post("/content-assignments", summary="Assign a lesson or exercise, overriding the sequence",
          opt={"permission": Permission.CONTENT_ASSIGN})
    async def assign_content(
        self, request: Request[Any, Any, Any], student_id: FromPath[UUID],
        data: JSONBody[schemas.AssignContent], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "assign_content", idempotency_key, lambda key: centres.assign_content(
            actor, student_id, course_id=data.course_id, lesson_id=data.lesson_id,
            exercise_id=data.exercise_id, reason=data.reason, session_id=data.session_id,
            idempotency=key))

    @post("/content-assignments/{assignment_id:uuid}/withdraw", status_code=200,
          summary="Withdraw an active content assignment", opt={"permission": Permission.CONTENT_ASSIGN})
    async def withdraw_content_assignment(
        self, request: Request[Any, Any, Any], student_id: FromPath[UUID], assignment_id: FromPath[UUID],
        data: JSONBody[schemas.WithdrawContentAssignment], actor: NamedDependency[Actor],
        centres: NamedDependency[TutoringCentres], idempotency_key: IdempotencyHeader = None,
    ) -> Response[dict[str, Any]]:
        return await _run(request, "withdraw_content_assignment", idempotency_key,
                          lambda key: centres.withdraw_content_assignment(
                              actor, student_id, assignment_id, reason=data.reason, idempotency=key))
