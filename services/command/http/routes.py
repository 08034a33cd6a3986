"""Every route of the command API: its method and path, the command it carries, and a summary.

A route's permission, the status of its answer and its response struct come from the verb's
entry in :data:`services.command.bus.VERBS`; the ids in its path are fields of the command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from services.command.commands import academic as ac
from services.command.commands import catch_ups as cu
from services.command.commands import centres as ce
from services.command.commands import classes as cl
from services.command.commands import exercises as ex
from services.command.commands import help_requests as hr
from services.command.commands import homework as hw
from services.command.commands import notes as no
from services.command.commands import notifications as nt
from services.command.commands import paper as pa
from services.command.commands import seats as se
from services.command.commands import series as sr
from services.command.commands import sessions as ss
from services.command.commands.base import Command

HELP_RATE_LIMIT = "help"
"""The ``rate_limit`` of the one route the help-request limit counts: raising a request
(withdrawing one shares its permission but is not counted)."""


@dataclass(frozen=True)
class Route:
    method: Literal["POST", "DELETE"]
    path: str
    command: type[Command]
    summary: str
    query: tuple[str, ...] = ()
    """Fields of the command sent as query parameters (a DELETE has no body)."""
    rate_limit: str | None = None
    tag: str = ""


def post(
    path: str, command: type[Command], summary: str, *, rate_limit: str | None = None
) -> Route:
    return Route("POST", path, command, summary, rate_limit=rate_limit)


def delete(
    path: str, command: type[Command], summary: str, *, query: tuple[str, ...] = ()
) -> Route:
    return Route("DELETE", path, command, summary, query=query)


def resource(tag: str, prefix: str, *routes: Route) -> tuple[Route, ...]:
    """Routes of one resource: under one path, under one tag of the OpenAPI document."""
    return tuple(
        replace(route, path=(prefix + route.path).rstrip("/") or "/", tag=tag) for route in routes
    )


SESSION = "/api/v1/sessions/{session_id:uuid}"
PAPER_UPLOAD = "/api/v1/paper/uploads/{upload_id:uuid}"

ROUTES: tuple[Route, ...] = (
    *resource(
        "centres",
        "/api/v1/centres",
        post("/", ce.RegisterCentre, "Register a centre (SUPER_ADMIN)"),
        post(
            "/{centre_id:str}/help-slas",
            ce.ChangeHelpSlas,
            "Change within how many minutes help requests of each priority are due (CENTER_ADMIN)",
        ),
        post(
            "/{centre_id:str}/session-length",
            ce.ChangeSessionLength,
            "Change how long a session of the centre may last (CENTER_ADMIN)",
        ),
        post(
            "/{centre_id:str}/reminders",
            ce.ChangeReminders,
            "Change how many minutes before a session its people are reminded (CENTER_ADMIN)",
        ),
        post(
            "/{centre_id:str}/notification-channels",
            nt.ConfigureNotificationChannels,
            "Set the centre's webhook (URL, signing secret) and e-mail on or off (CENTER_ADMIN)",
        ),
    ),
    *resource(
        "people",
        "/api/v1/people",
        post("/", ce.RegisterPerson, "Register a person of the caller's centre"),
        post(
            "/{person_id:uuid}/erasure",
            ce.ErasePersonData,
            "Erase a person's personal data, with a reason (CENTER_ADMIN): their key is "
            "destroyed, so their name, e-mail and every text about them read [erased] "
            "everywhere; erasing again answers the first erasure",
        ),
    ),
    *resource(
        "sessions",
        "/api/v1/sessions",
        post("/", ss.ScheduleSession, "Schedule a session"),
        post(
            "/series", sr.ScheduleSeries, "Weekly sessions for a tutor, each with the same students"
        ),
        post(
            "/series/{series_id:uuid}/cancel",
            sr.CancelSeries,
            "Cancel every session of a weekly series still to come, with a reason",
        ),
        post(
            "/{session_id:uuid}/start", ss.StartSession, "Start a scheduled session (it goes LIVE)"
        ),
        post("/{session_id:uuid}/end", ss.EndSession, "End a live session (it is COMPLETED)"),
        post(
            "/{session_id:uuid}/cancel",
            ss.CancelSession,
            "Cancel a scheduled session, with a reason",
        ),
        post("/{session_id:uuid}/reschedule", ss.RescheduleSession, "Move a scheduled session"),
        post("/{session_id:uuid}/mode", ss.ChangeSessionMode, "Switch ONLINE / PHYSICAL / HYBRID"),
        post("/{session_id:uuid}/extend", ss.ExtendSession, "Run a live session longer"),
        post(
            "/{session_id:uuid}/enrolments",
            ss.EnrolStudent,
            "Enrol a student with their own course and lesson",
        ),
        post(
            "/{session_id:uuid}/enrolments/{student_id:uuid}/lesson",
            ss.ChangeLesson,
            "Move an enrolled student to another lesson (while SCHEDULED or LIVE)",
        ),
        delete(
            "/{session_id:uuid}/enrolments/{student_id:uuid}",
            ss.RemoveStudent,
            "Remove a student from the session",
            query=("reason",),
        ),
        post(
            "/{session_id:uuid}/help-requests",
            hr.RaiseHelpRequest,
            "Ask for help (a STUDENT, while LIVE)",
            rate_limit=HELP_RATE_LIMIT,
        ),
    ),
    *resource(
        "live session",
        SESSION,
        post("/presence", se.RecordPresence, "A student's client reports presence"),
        post(
            "/students/{student_id:uuid}/mode",
            se.SwitchTeachingMode,
            "The tutor teaches this student, or lets them work (TEACH / OBSERVE)",
        ),
    ),
    *resource(
        "help requests",
        SESSION + "/help-requests/{request_id:uuid}",
        post(
            "/acknowledge",
            hr.AcknowledgeHelpRequest,
            "The tutor has seen it (PENDING → ACKNOWLEDGED)",
        ),
        post("/start", hr.StartHelping, "The tutor is helping now (→ IN_PROGRESS)"),
        post("/resolve", hr.ResolveHelpRequest, "Resolved, with the tutor's response (→ RESOLVED)"),
        post("/cancel", hr.CancelHelpRequest, "The student withdraws it (→ CANCELLED)"),
    ),
    *resource(
        "catch-ups",
        "/api/v1/catch-ups",
        post("/", cu.AssignCatchUp, "Set catch-up work for a student of a session"),
        post(
            "/{catch_up_id:uuid}/start", cu.StartCatchUp, "Begin the work (PENDING → IN_PROGRESS)"
        ),
        post("/{catch_up_id:uuid}/complete", cu.CompleteCatchUp, "The work is done (→ COMPLETED)"),
    ),
    *resource(
        "notes",
        "/api/v1",
        post("/students/{student_id:uuid}/notes", no.WriteNote, "Write a note about a student"),
        post("/notes/{note_id:uuid}/edit", no.EditNote, "Rewrite a note (its author)"),
        post("/notes/{note_id:uuid}/redact", no.RedactNote, "Remove a note from view (an admin)"),
    ),
    *resource(
        "classes",
        "/api/v1/classes",
        post("/", cl.CreateClass, "Create a class cohort"),
        post("/{class_id:uuid}/update", cl.UpdateClass, "Rename, re-assign or resize a class"),
        post("/{class_id:uuid}/cancel", cl.CancelClass, "Cancel a class"),
        post("/{class_id:uuid}/members", cl.AddClassMember, "Add a student (capacity enforced)"),
        delete(
            "/{class_id:uuid}/members/{student_id:uuid}", cl.RemoveClassMember, "Remove a student"
        ),
        post(
            "/{class_id:uuid}/sessions",
            cl.ScheduleClassSession,
            "Schedule a session for the whole class",
        ),
        post(
            "/{class_id:uuid}/schedule-rules",
            sr.ScheduleClassRule,
            "Weekly sessions for the class, for some weeks",
        ),
    ),
    *resource(
        "attendance",
        "/api/academic/attendance",
        post("/bulk", se.MarkAttendance, "Mark several students of a session at once"),
    ),
    *resource(
        "exercises",
        "/api/v1/exercises",
        post(
            "/",
            ex.PublishExercise,
            "Add an exercise, with its answer key, to the centre's catalogue",
        ),
        post("/{exercise_id:uuid}/retire", ex.RetireExercise, "Stop the exercise being set"),
    ),
    *resource(
        "exercise work",
        SESSION + "/work",
        post(
            "/", ex.AssignExercise, "Set an exercise for some students, or all, of a live session"
        ),
        post(
            "/{work_id:uuid}/start", ex.StartExercise, "The student begins (ASSIGNED → IN_PROGRESS)"
        ),
        post(
            "/{work_id:uuid}/progress", ex.ReportExerciseProgress, "How far the student is (0-99 %)"
        ),
        post(
            "/{work_id:uuid}/submit",
            ex.SubmitExercise,
            "Hand in the answers; marked at once where the exercise has an answer key",
        ),
        post(
            "/{work_id:uuid}/grade",
            ex.GradeExercise,
            "The tutor marks handed-in work, with feedback",
        ),
    ),
    *resource(
        "homework",
        "/api/v1/homework",
        post(
            "/", hw.AssignHomework, "Set homework (catalogue exercises, a due time) for a student"
        ),
        post("/{homework_id:uuid}/start", hw.StartHomework, "The student begins it"),
        post(
            "/{homework_id:uuid}/submit",
            hw.SubmitHomework,
            "Hand in answers per exercise (on time or late); auto-marked where possible",
        ),
        post("/{homework_id:uuid}/grade", hw.GradeHomework, "The tutor grades it, with feedback"),
    ),
    *resource(
        "notifications",
        "/api/v1/notifications",
        post("/read", nt.MarkNotificationsRead, "Mark some of one's own notifications read"),
        post(
            "/read-all",
            nt.MarkAllNotificationsRead,
            "Mark all of one's own notifications up to a time (default now) read",
        ),
        post(
            "/preferences",
            nt.SetNotificationPreferences,
            "Choose which types of one's notifications reach which channel",
        ),
    ),
    *resource(
        "academic profiles",
        "/api/v1/students/{student_id:uuid}",
        post("/assessments", ac.AssessSubject, "Assess a subject: school grade and working level"),
        post(
            "/working-level",
            ac.ChangeWorkingLevel,
            "Change the working level of an assessed subject",
        ),
        post(
            "/content-assignments",
            ac.AssignContent,
            "Assign a lesson or exercise, overriding the sequence",
        ),
        post(
            "/content-assignments/{assignment_id:uuid}/withdraw",
            ac.WithdrawContentAssignment,
            "Withdraw an active content assignment",
        ),
    ),
    *resource(
        "paper work",
        PAPER_UPLOAD,
        post(
            "/route",
            pa.RoutePaper,
            "File an upload whose QR code could not be read, by the short code printed under it",
        ),
        post("/annotations", pa.AnnotatePaper, "Put ink on a page: a stroke, a stamp or text"),
        delete("/annotations/{annotation_id:uuid}", pa.EraseAnnotation, "Erase a piece of ink"),
        post("/score", pa.ScorePaper, "Score the work against a rubric, criterion by criterion"),
        post(
            "/hand-back",
            pa.HandBackPaper,
            "Hand the marked work back: the student sees the ink and the score, the work is graded",
        ),
    ),
)
