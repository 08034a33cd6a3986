"""The dispatch table: for each command, its handler, the permission a role needs to attempt
it (stated here once; the HTTP route guard reads it from here too) and the status of its
answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from services.command.commands import academic as academic_commands
from services.command.commands import catch_ups as catch_up_commands
from services.command.commands import centres as centre_commands
from services.command.commands import classes as class_commands
from services.command.commands import exercises as exercise_commands
from services.command.commands import help_requests as help_commands
from services.command.commands import homework as homework_commands
from services.command.commands import notes as note_commands
from services.command.commands import notifications as notification_commands
from services.command.commands import paper as paper_commands
from services.command.commands import seats as seat_commands
from services.command.commands import series as series_commands
from services.command.commands import sessions as session_commands
from services.command.commands import timers as timer_commands
from services.command.commands.base import Command
from services.command.handlers import (
    academic,
    catch_ups,
    centres,
    classes,
    exercises,
    help_requests,
    homework,
    notes,
    notifications,
    paper,
    seats,
    series,
    sessions,
    timers,
    work,
)
from services.command.idempotency import IdempotencyKey
from services.command.responses import View, WithStatus, wire
from services.command.unit_of_work import (
    CommandResult,
    Decision,
    DirectoryCache,
    Services,
    UnitOfWork,
    execute,
)
from shared.eventstore import EventStore
from shared.tenancy import Actor, Permission, require

C = TypeVar("C", bound=Command)

CREATED = 201


@dataclass(frozen=True)
class Verb(Generic[C]):
    command: type[C]
    handler: Callable[[C, UnitOfWork], View | WithStatus[Any]]
    permission: Permission
    status: int = 200
    """The status of a successful answer: 201 where the verb creates something."""
    also: tuple[int, ...] = ()
    """Other statuses of a successful answer, for a handler that answers :class:`WithStatus`
    (an assessment creates the course's entry the first time, 201, and changes it after, 200)."""
    over_http: bool = True
    """False for verbs without a JSON route: what the scheduler asks for when a timer fires, and
    what a route of its own builds (uploads of files, printed PDFs)."""

    @property
    def name(self) -> str:
        """The verb's name in logs and metrics (``schedule_session``)."""
        return self.handler.__name__

    @property
    def answers(self) -> type[View]:
        """The response struct of the verb."""
        answer: Any = get_type_hints(self.handler)["return"]
        if get_origin(answer) is WithStatus:
            (answer,) = get_args(answer)
        assert isinstance(answer, type) and issubclass(answer, View), self.name
        return answer


P = Permission
_p = paper_commands
_s, _c = session_commands, class_commands
VERBS_IN_ORDER: tuple[Verb[Any], ...] = (
    Verb(centre_commands.RegisterCentre, centres.register_centre, P.CENTRE_REGISTER, CREATED),
    Verb(centre_commands.ChangeHelpSlas, centres.change_help_slas, P.CENTRE_CONFIGURE),
    Verb(
        centre_commands.ChangeSessionLength, centres.change_max_session_length, P.CENTRE_CONFIGURE
    ),
    Verb(centre_commands.ChangeReminders, centres.change_reminders, P.CENTRE_CONFIGURE),
    Verb(centre_commands.RegisterPerson, centres.register_person, P.PERSON_REGISTER, CREATED),
    Verb(
        centre_commands.ErasePersonData,
        centres.erase_person_data,
        P.PERSON_ERASE,
        CREATED,
        also=(200,),
    ),
    Verb(_s.ScheduleSession, sessions.schedule_session, P.SESSION_SCHEDULE, CREATED),
    Verb(_s.StartSession, sessions.start_session, P.SESSION_RUN),
    Verb(_s.EndSession, sessions.end_session, P.SESSION_RUN),
    Verb(_s.CancelSession, sessions.cancel_session, P.SESSION_CANCEL),
    Verb(_s.RescheduleSession, sessions.reschedule_session, P.SESSION_SCHEDULE),
    Verb(_s.ChangeSessionMode, sessions.change_session_mode, P.SESSION_SCHEDULE),
    Verb(_s.ExtendSession, sessions.extend_session, P.SESSION_RUN),
    Verb(_s.EnrolStudent, sessions.enrol_student, P.ENROLMENT_MANAGE, CREATED),
    Verb(_s.RemoveStudent, sessions.remove_student, P.ENROLMENT_MANAGE),
    Verb(_s.ChangeLesson, sessions.change_lesson, P.LESSON_CHANGE),
    Verb(series_commands.ScheduleSeries, series.schedule_series, P.SESSION_SCHEDULE, CREATED),
    Verb(series_commands.CancelSeries, series.cancel_series, P.SESSION_CANCEL),
    Verb(seat_commands.MarkAttendance, seats.mark_attendance, P.ATTENDANCE_MARK),
    Verb(seat_commands.RecordPresence, seats.record_presence, P.PRESENCE_RECORD),
    Verb(seat_commands.SwitchTeachingMode, seats.switch_teaching_mode, P.TEACHING_SWITCH),
    Verb(
        help_commands.RaiseHelpRequest,
        help_requests.raise_help_request,
        P.HELP_REQUEST_RAISE,
        CREATED,
    ),
    Verb(
        help_commands.AcknowledgeHelpRequest,
        help_requests.acknowledge_help_request,
        P.HELP_REQUEST_HANDLE,
    ),
    Verb(help_commands.StartHelping, help_requests.start_helping, P.HELP_REQUEST_HANDLE),
    Verb(
        help_commands.ResolveHelpRequest, help_requests.resolve_help_request, P.HELP_REQUEST_HANDLE
    ),
    Verb(help_commands.CancelHelpRequest, help_requests.cancel_help_request, P.HELP_REQUEST_RAISE),
    Verb(catch_up_commands.AssignCatchUp, catch_ups.assign_catch_up, P.CATCH_UP_ASSIGN, CREATED),
    Verb(catch_up_commands.StartCatchUp, catch_ups.start_catch_up, P.CATCH_UP_PROGRESS),
    Verb(catch_up_commands.CompleteCatchUp, catch_ups.complete_catch_up, P.CATCH_UP_PROGRESS),
    Verb(note_commands.WriteNote, notes.write_note, P.NOTE_WRITE, CREATED),
    Verb(note_commands.EditNote, notes.edit_note, P.NOTE_WRITE),
    Verb(note_commands.RedactNote, notes.redact_note, P.NOTE_REDACT),
    Verb(_c.CreateClass, classes.create_class, P.CLASS_MANAGE, CREATED),
    Verb(_c.UpdateClass, classes.update_class, P.CLASS_MANAGE),
    Verb(_c.CancelClass, classes.cancel_class, P.CLASS_MANAGE),
    Verb(_c.AddClassMember, classes.add_class_member, P.CLASS_MANAGE, CREATED),
    Verb(_c.RemoveClassMember, classes.remove_class_member, P.CLASS_MANAGE),
    Verb(_c.ScheduleClassSession, classes.schedule_class_session, P.SESSION_SCHEDULE, CREATED),
    Verb(
        series_commands.ScheduleClassRule, classes.schedule_class_rule, P.SESSION_SCHEDULE, CREATED
    ),
    Verb(
        exercise_commands.PublishExercise, exercises.publish_exercise, P.EXERCISE_PUBLISH, CREATED
    ),
    Verb(exercise_commands.RetireExercise, exercises.retire_exercise, P.EXERCISE_PUBLISH),
    Verb(exercise_commands.AssignExercise, work.assign_exercise, P.EXERCISE_ASSIGN, CREATED),
    Verb(exercise_commands.StartExercise, work.start_exercise, P.EXERCISE_WORK),
    Verb(exercise_commands.ReportExerciseProgress, work.report_exercise_progress, P.EXERCISE_WORK),
    Verb(exercise_commands.SubmitExercise, work.submit_exercise, P.EXERCISE_WORK),
    Verb(exercise_commands.GradeExercise, work.grade_exercise, P.WORK_GRADE),
    Verb(homework_commands.AssignHomework, homework.assign_homework, P.HOMEWORK_ASSIGN, CREATED),
    Verb(homework_commands.StartHomework, homework.start_homework, P.HOMEWORK_WORK),
    Verb(homework_commands.SubmitHomework, homework.submit_homework, P.HOMEWORK_WORK),
    Verb(homework_commands.GradeHomework, homework.grade_homework, P.WORK_GRADE),
    Verb(
        academic_commands.AssessSubject,
        academic.assess_subject,
        P.ACADEMIC_LEVEL_SET,
        CREATED,
        also=(200,),
    ),
    Verb(academic_commands.ChangeWorkingLevel, academic.change_working_level, P.ACADEMIC_LEVEL_SET),
    Verb(academic_commands.AssignContent, academic.assign_content, P.CONTENT_ASSIGN, CREATED),
    Verb(
        academic_commands.WithdrawContentAssignment,
        academic.withdraw_content_assignment,
        P.CONTENT_ASSIGN,
    ),
    Verb(
        notification_commands.MarkNotificationsRead,
        notifications.mark_notifications_read,
        P.NOTIFICATIONS_OWN,
    ),
    Verb(
        notification_commands.MarkAllNotificationsRead,
        notifications.mark_all_notifications_read,
        P.NOTIFICATIONS_OWN,
    ),
    Verb(
        notification_commands.SetNotificationPreferences,
        notifications.set_notification_preferences,
        P.NOTIFICATIONS_OWN,
    ),
    Verb(
        notification_commands.ConfigureNotificationChannels,
        notifications.configure_notification_channels,
        P.CENTRE_CONFIGURE,
    ),
    Verb(_p.PrintSessionWorksheets, paper.print_session_worksheets, P.PAPER_PRINT, over_http=False),
    Verb(_p.PrintHomeworkWorksheet, paper.print_homework_worksheet, P.PAPER_PRINT, over_http=False),
    Verb(_p.HandInPaper, paper.hand_in_paper, P.PAPER_HAND_IN, CREATED, over_http=False),
    Verb(_p.RoutePaper, paper.route_paper, P.PAPER_HAND_IN),
    Verb(_p.AnnotatePaper, paper.annotate_paper, P.WORK_GRADE, CREATED),
    Verb(_p.EraseAnnotation, paper.erase_annotation, P.WORK_GRADE),
    Verb(_p.AttachVoiceComment, paper.attach_voice_comment, P.WORK_GRADE, over_http=False),
    Verb(_p.ScorePaper, paper.score_paper, P.WORK_GRADE),
    Verb(_p.HandBackPaper, paper.hand_back_paper, P.WORK_GRADE),
)

_t = timer_commands
TIMER_VERBS: tuple[Verb[Any], ...] = (
    Verb(_t.SendSessionReminder, timers.send_session_reminder, P.SESSION_REMIND, over_http=False),
    Verb(
        _t.CompleteOverdueSession,
        timers.complete_overdue_session,
        P.SESSION_COMPLETE_OVERDUE,
        over_http=False,
    ),
    Verb(
        _t.SendAttendanceReminder,
        timers.send_attendance_reminder,
        P.ATTENDANCE_REMIND,
        over_http=False,
    ),
    Verb(
        _t.EscalateHelpRequest,
        timers.escalate_help_request,
        P.HELP_REQUEST_ESCALATE,
        over_http=False,
    ),
    Verb(_t.SendCatchUpReminder, timers.send_catch_up_reminder, P.CATCH_UP_REMIND, over_http=False),
    Verb(
        _t.MarkCatchUpOverdue,
        timers.mark_catch_up_overdue,
        P.CATCH_UP_MARK_OVERDUE,
        over_http=False,
    ),
    Verb(
        _t.SendHomeworkReminder, timers.send_homework_reminder, P.HOMEWORK_REMIND, over_http=False
    ),
    Verb(
        _t.MarkHomeworkOverdue,
        timers.mark_homework_overdue,
        P.HOMEWORK_MARK_OVERDUE,
        over_http=False,
    ),
)
"""What timers do when they fire: only SYSTEM may (the scheduler), and no route leads here."""

VERBS_IN_ORDER = (*VERBS_IN_ORDER, *TIMER_VERBS)

VERBS: dict[type[Command], Verb[Any]] = {verb.command: verb for verb in VERBS_IN_ORDER}


def dispatch(
    store: EventStore,
    directory: DirectoryCache,
    actor: Actor,
    command: Command,
    idempotency: IdempotencyKey | None = None,
    services: Services | None = None,
) -> CommandResult:
    """Run ``command`` for ``actor``: refused (403) unless the actor's role may attempt it, then
    decided by its handler and stored in one commit."""
    verb = VERBS[type(command)]
    require(actor, verb.permission)

    def decide(uow: UnitOfWork) -> Decision:
        answer = verb.handler(command, uow)
        if isinstance(answer, WithStatus):
            return Decision(answer.status, wire(answer.view))
        return Decision(verb.status, wire(answer))

    return execute(store, directory, actor, decide, idempotency, services)
