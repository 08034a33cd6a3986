"""The command side of tutorpulse: one entry point, :meth:`TutoringCentres.handle`.

A command (a type of :mod:`services.command.commands`) is dispatched by the table of
:mod:`services.command.bus` to its handler (:mod:`services.command.handlers`), which decides
with the aggregates of :mod:`services.command.domain` on a unit of work
(:mod:`services.command.unit_of_work`) that stores every resulting event in one atomic commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.command import bus
from services.command.commands import academic as ac
from services.command.commands import catch_ups as cu
from services.command.commands import centres as ce
from services.command.commands import classes as cl
from services.command.commands import exercises as ex
from services.command.commands import help_requests as hr
from services.command.commands import homework as hw
from services.command.commands import notes as no
from services.command.commands import seats as se
from services.command.commands import series as sr
from services.command.commands import sessions as ss
from services.command.commands.base import Command
from services.command.domain.aggregate import NotFound
from services.command.domain.session import DEFAULT_CAPACITY
from services.command.idempotency import IdempotencyKey
from services.command.unit_of_work import (
    CommandResult,
    ConcurrentUpdate,
    DirectoryCache,
    UnitOfWork,
)
from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    LevelChangeType,
    NoteVisibility,
    PresenceKind,
    Question,
    SessionMode,
    TeachingMode,
    WeeklyRule,
)
from shared.eventstore import EventStore
from shared.tenancy import Actor, Role

__all__ = ["CommandResult", "ConcurrentUpdate", "NotFound", "TutoringCentres", "open_centres"]


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
class SeriesStudent:
    student_id: UUID
    course_id: str | None = None
    lesson_id: str | None = None


Key = IdempotencyKey | None


class TutoringCentres(EventStore):
    """The event store, and the commands of every tutoring centre over it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.directory = DirectoryCache()

    def handle(self, actor: Actor, command: Command, *,
               idempotency: IdempotencyKey | None = None) -> CommandResult:
        """Run ``command`` for ``actor`` (see :func:`services.command.bus.dispatch`)."""
        return bus.dispatch(self, self.directory, actor, command, idempotency)

    # --- the verbs by name, as before commands were types -----------------------------------

    def register_centre(self, actor: Actor, centre_id: str, *, name: str, time_zone: str,
                        help_sla_minutes: dict[str, int] | None = None,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ce.RegisterCentre(
            centre_id=centre_id, name=name, time_zone=time_zone,
            help_sla_minutes=help_sla_minutes), idempotency=idempotency)  # type: ignore[arg-type]

    def change_help_slas(self, actor: Actor, centre_id: str, minutes: dict[str, int], *,
                         idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ce.ChangeHelpSlas(
            centre_id=centre_id, help_sla_minutes=minutes),  # type: ignore[arg-type]
            idempotency=idempotency)

    def change_max_session_length(self, actor: Actor, centre_id: str, minutes: int, *,
                                  idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ce.ChangeSessionLength(
            centre_id=centre_id, max_session_minutes=minutes), idempotency=idempotency)

    def register_person(self, actor: Actor, *, name: str, email: str, role: Role,
                        guardian_id: UUID | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ce.RegisterPerson(
            name=name, email=email, role=role, guardian_id=guardian_id), idempotency=idempotency)

    def schedule_session(self, actor: Actor, plan: SessionPlan, *,
                         idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.ScheduleSession(
            title=plan.title, starts_at=plan.starts_at, ends_at=plan.ends_at, mode=plan.mode,
            tutor_id=plan.tutor_id, time_zone=plan.time_zone, meeting_link=plan.meeting_link,
            location=plan.location, capacity=plan.capacity, class_id=plan.class_id),
            idempotency=idempotency)

    def start_session(self, actor: Actor, session_id: UUID, *, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.StartSession(session_id=session_id), idempotency=idempotency)

    def end_session(self, actor: Actor, session_id: UUID, *, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.EndSession(session_id=session_id), idempotency=idempotency)

    def cancel_session(self, actor: Actor, session_id: UUID, *, reason: str,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.CancelSession(session_id=session_id, reason=reason),
                           idempotency=idempotency)

    def reschedule_session(self, actor: Actor, session_id: UUID, *, starts_at: datetime,
                           ends_at: datetime, reason: str | None = None,
                           idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.RescheduleSession(
            session_id=session_id, starts_at=starts_at, ends_at=ends_at, reason=reason),
            idempotency=idempotency)

    def change_session_mode(self, actor: Actor, session_id: UUID, *, mode: SessionMode,
                            meeting_link: str | None = None, location: str | None = None,
                            idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.ChangeSessionMode(
            session_id=session_id, mode=mode, meeting_link=meeting_link, location=location),
            idempotency=idempotency)

    def extend_session(self, actor: Actor, session_id: UUID, *, minutes: int,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.ExtendSession(session_id=session_id, minutes=minutes),
                           idempotency=idempotency)

    def enrol_student(self, actor: Actor, session_id: UUID, student_id: UUID, *,
                      course_id: str | None = None, lesson_id: str | None = None,
                      idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.EnrolStudent(
            session_id=session_id, student_id=student_id, course_id=course_id,
            lesson_id=lesson_id), idempotency=idempotency)

    def remove_student(self, actor: Actor, session_id: UUID, student_id: UUID, *,
                       reason: str | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.RemoveStudent(
            session_id=session_id, student_id=student_id, reason=reason), idempotency=idempotency)

    def change_lesson(self, actor: Actor, session_id: UUID, student_id: UUID, *, lesson_id: str,
                      course_id: str | None = None, reason: str | None = None,
                      idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ss.ChangeLesson(
            session_id=session_id, student_id=student_id, lesson_id=lesson_id,
            course_id=course_id, reason=reason), idempotency=idempotency)

    def mark_attendance(self, actor: Actor, session_id: UUID, marks: Sequence[AttendanceMark], *,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, se.MarkAttendance(session_id=session_id, records=[
            se.AttendanceRecord(student_id=m.student_id, status=m.status, notes=m.notes)
            for m in marks]), idempotency=idempotency)

    def raise_help_request(self, actor: Actor, session_id: UUID, *,
                           priority: HelpPriority = HelpPriority.MEDIUM,
                           exercise_id: str | None = None, message: str | None = None,
                           idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hr.RaiseHelpRequest(
            session_id=session_id, priority=priority, exercise_id=exercise_id, message=message),
            idempotency=idempotency)

    def acknowledge_help_request(self, actor: Actor, session_id: UUID, request_id: UUID, *,
                                 idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hr.AcknowledgeHelpRequest(
            session_id=session_id, request_id=request_id), idempotency=idempotency)

    def start_helping(self, actor: Actor, session_id: UUID, request_id: UUID, *,
                      idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hr.StartHelping(session_id=session_id, request_id=request_id),
                           idempotency=idempotency)

    def resolve_help_request(self, actor: Actor, session_id: UUID, request_id: UUID, *,
                             response: str, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hr.ResolveHelpRequest(
            session_id=session_id, request_id=request_id, response=response),
            idempotency=idempotency)

    def cancel_help_request(self, actor: Actor, session_id: UUID, request_id: UUID, *,
                            idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hr.CancelHelpRequest(
            session_id=session_id, request_id=request_id), idempotency=idempotency)

    def record_presence(self, actor: Actor, session_id: UUID, kind: PresenceKind, *,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, se.RecordPresence(session_id=session_id, event=kind),
                           idempotency=idempotency)

    def switch_teaching_mode(self, actor: Actor, session_id: UUID, student_id: UUID,
                             mode: TeachingMode, *, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, se.SwitchTeachingMode(
            session_id=session_id, student_id=student_id, mode=mode), idempotency=idempotency)

    def schedule_series(self, actor: Actor, rule: WeeklyRule, plan: SessionPlan,
                        students: Sequence[SeriesStudent], *,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, sr.ScheduleSeries(
            days_of_week=list(rule.days_of_week), start_time=rule.start_time,
            duration_minutes=rule.duration_minutes, first_date=rule.first_date, weeks=rule.weeks,
            time_zone=rule.time_zone, title=plan.title, mode=plan.mode,
            meeting_link=plan.meeting_link, location=plan.location, capacity=plan.capacity,
            tutor_id=plan.tutor_id, students=[
                sr.SeriesStudent(student_id=s.student_id, course_id=s.course_id,
                                 lesson_id=s.lesson_id) for s in students]),
            idempotency=idempotency)

    def cancel_series(self, actor: Actor, series_id: UUID, *, reason: str,
                      idempotency: Key = None) -> CommandResult:
        return self.handle(actor, sr.CancelSeries(series_id=series_id, reason=reason),
                           idempotency=idempotency)

    def create_class(self, actor: Actor, *, name: str, subject: str, teacher_id: UUID,
                     capacity: int = 20, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.CreateClass(
            name=name, subject=subject, teacher_id=teacher_id, capacity=capacity),
            idempotency=idempotency)

    def update_class(self, actor: Actor, class_id: UUID, *, name: str, subject: str,
                     teacher_id: UUID, capacity: int, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.UpdateClass(
            class_id=class_id, name=name, subject=subject, teacher_id=teacher_id,
            capacity=capacity), idempotency=idempotency)

    def cancel_class(self, actor: Actor, class_id: UUID, *, reason: str,
                     idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.CancelClass(class_id=class_id, reason=reason),
                           idempotency=idempotency)

    def add_class_member(self, actor: Actor, class_id: UUID, student_id: UUID, *,
                         idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.AddClassMember(class_id=class_id, student_id=student_id),
                           idempotency=idempotency)

    def remove_class_member(self, actor: Actor, class_id: UUID, student_id: UUID, *,
                            idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.RemoveClassMember(class_id=class_id, student_id=student_id),
                           idempotency=idempotency)

    def schedule_class_session(self, actor: Actor, class_id: UUID, plan: SessionPlan, *,
                               idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cl.ScheduleClassSession(
            class_id=class_id, title=plan.title, starts_at=plan.starts_at, ends_at=plan.ends_at,
            mode=plan.mode, time_zone=plan.time_zone, meeting_link=plan.meeting_link,
            location=plan.location, capacity=plan.capacity), idempotency=idempotency)

    def schedule_class_rule(self, actor: Actor, class_id: UUID, rule: WeeklyRule,
                            plan: SessionPlan, *, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, sr.ScheduleClassRule(
            class_id=class_id, days_of_week=list(rule.days_of_week), start_time=rule.start_time,
            duration_minutes=rule.duration_minutes, first_date=rule.first_date, weeks=rule.weeks,
            time_zone=rule.time_zone, title=plan.title, mode=plan.mode,
            meeting_link=plan.meeting_link, location=plan.location, capacity=plan.capacity),
            idempotency=idempotency)

    def centre_time_zone(self, actor: Actor) -> str:
        return UnitOfWork(self, self.directory, actor).centre().time_zone

    def publish_exercise(self, actor: Actor, *, title: str, course_id: str,
                         exercise_type: ExerciseType, difficulty: Difficulty,
                         questions: Sequence[Question], instructions: str | None = None,
                         time_limit_minutes: int | None = None,
                         idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.PublishExercise(
            title=title, course_id=course_id, exercise_type=exercise_type, difficulty=difficulty,
            questions=list(questions), instructions=instructions,
            time_limit_minutes=time_limit_minutes), idempotency=idempotency)

    def retire_exercise(self, actor: Actor, exercise_id: UUID, *, reason: str,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.RetireExercise(exercise_id=exercise_id, reason=reason),
                           idempotency=idempotency)

    def assign_exercise(self, actor: Actor, session_id: UUID, exercise_id: UUID, *,
                        student_ids: Sequence[UUID] | None = None,
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.AssignExercise(
            session_id=session_id, exercise_id=exercise_id,
            student_ids=None if student_ids is None else list(student_ids)),
            idempotency=idempotency)

    def start_exercise(self, actor: Actor, session_id: UUID, work_id: UUID, *,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.StartExercise(session_id=session_id, work_id=work_id),
                           idempotency=idempotency)

    def report_exercise_progress(self, actor: Actor, session_id: UUID, work_id: UUID, *,
                                 percent: int, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.ReportExerciseProgress(
            session_id=session_id, work_id=work_id, percent=percent), idempotency=idempotency)

    def submit_exercise(self, actor: Actor, session_id: UUID, work_id: UUID, *,
                        answers: dict[str, str], idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.SubmitExercise(
            session_id=session_id, work_id=work_id, answers=answers), idempotency=idempotency)

    def grade_exercise(self, actor: Actor, session_id: UUID, work_id: UUID, *, score: float,
                       feedback: str | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ex.GradeExercise(
            session_id=session_id, work_id=work_id, score=score, feedback=feedback),
            idempotency=idempotency)

    def assign_homework(self, actor: Actor, student_id: UUID, *, title: str,
                        exercise_ids: Sequence[UUID], due_at: datetime,
                        session_id: UUID | None = None, teacher_id: UUID | None = None,
                        notes: str | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hw.AssignHomework(
            student_id=student_id, title=title, exercise_ids=list(exercise_ids), due_at=due_at,
            session_id=session_id, teacher_id=teacher_id, notes=notes), idempotency=idempotency)

    def start_homework(self, actor: Actor, homework_id: UUID, *,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hw.StartHomework(homework_id=homework_id),
                           idempotency=idempotency)

    def submit_homework(self, actor: Actor, homework_id: UUID, *,
                        answers: dict[UUID, dict[str, str]],
                        idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hw.SubmitHomework(homework_id=homework_id, answers=answers),
                           idempotency=idempotency)

    def grade_homework(self, actor: Actor, homework_id: UUID, *, score: float,
                       feedback: str | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, hw.GradeHomework(
            homework_id=homework_id, score=score, feedback=feedback), idempotency=idempotency)

    def write_note(self, actor: Actor, student_id: UUID, *, content: str,
                   visibility: NoteVisibility, session_id: UUID | None = None,
                   idempotency: Key = None) -> CommandResult:
        return self.handle(actor, no.WriteNote(
            student_id=student_id, content=content, visibility=visibility,
            session_id=session_id), idempotency=idempotency)

    def edit_note(self, actor: Actor, note_id: UUID, *, content: str,
                  visibility: NoteVisibility | None = None,
                  idempotency: Key = None) -> CommandResult:
        return self.handle(actor, no.EditNote(note_id=note_id, content=content,
                                              visibility=visibility), idempotency=idempotency)

    def redact_note(self, actor: Actor, note_id: UUID, *, reason: str,
                    idempotency: Key = None) -> CommandResult:
        return self.handle(actor, no.RedactNote(note_id=note_id, reason=reason),
                           idempotency=idempotency)

    def assess_subject(self, actor: Actor, student_id: UUID, *, course_id: str,
                       school_grade: int, working_level: int, notes: str | None = None,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ac.AssessSubject(
            student_id=student_id, course_id=course_id, school_grade=school_grade,
            working_level=working_level, notes=notes), idempotency=idempotency)

    def change_working_level(self, actor: Actor, student_id: UUID, *, course_id: str, level: int,
                             change_type: LevelChangeType, reason: str,
                             idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ac.ChangeWorkingLevel(
            student_id=student_id, course_id=course_id, level=level, change_type=change_type,
            reason=reason), idempotency=idempotency)

    def assign_content(self, actor: Actor, student_id: UUID, *, course_id: str, reason: str,
                       lesson_id: str | None = None, exercise_id: str | None = None,
                       session_id: UUID | None = None, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ac.AssignContent(
            student_id=student_id, course_id=course_id, reason=reason, lesson_id=lesson_id,
            exercise_id=exercise_id, session_id=session_id), idempotency=idempotency)

    def withdraw_content_assignment(self, actor: Actor, student_id: UUID, assignment_id: UUID, *,
                                    reason: str, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, ac.WithdrawContentAssignment(
            student_id=student_id, assignment_id=assignment_id, reason=reason),
            idempotency=idempotency)

    def assign_catch_up(self, actor: Actor, session_id: UUID, student_id: UUID, *,
                        due_at: datetime, reason: str, idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cu.AssignCatchUp(
            session_id=session_id, student_id=student_id, due_at=due_at, reason=reason),
            idempotency=idempotency)

    def start_catch_up(self, actor: Actor, catch_up_id: UUID, *,
                       idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cu.StartCatchUp(catch_up_id=catch_up_id),
                           idempotency=idempotency)

    def complete_catch_up(self, actor: Actor, catch_up_id: UUID, *,
                          idempotency: Key = None) -> CommandResult:
        return self.handle(actor, cu.CompleteCatchUp(catch_up_id=catch_up_id),
                           idempotency=idempotency)


def open_centres(env: Mapping[str, str] | None = None) -> TutoringCentres:
    return TutoringCentres(env)
