"""The one permission matrix of tutorpulse.

Rules that depend on the resource as well as the role (a TEACHER runs only their own sessions,
a STUDENT raises help only for themselves) live with the command that needs them; this table
says which roles may attempt a verb at all.
"""

from __future__ import annotations

from enum import StrEnum

from shared.tenancy.actor import Actor
from shared.tenancy.roles import SYSTEM_ACTOR_ID, Role


class Forbidden(Exception):
    """The actor is authenticated but may not do this (HTTP 403)."""


class Permission(StrEnum):
    CENTRE_REGISTER = "centre:register"
    PERSON_REGISTER = "person:register"
    PERSON_ERASE = "person:erase"
    SESSION_SCHEDULE = "session:schedule"
    SESSION_RUN = "session:run"
    SESSION_CANCEL = "session:cancel"
    ENROLMENT_MANAGE = "enrolment:manage"
    LESSON_CHANGE = "lesson:change"
    ATTENDANCE_MARK = "attendance:mark"
    HELP_REQUEST_RAISE = "help-request:raise"
    HELP_REQUEST_HANDLE = "help-request:handle"
    CATCH_UP_ASSIGN = "catch-up:assign"
    PRESENCE_RECORD = "presence:record"
    NOTE_WRITE = "note:write"
    CLASS_MANAGE = "class:manage"
    CLASS_VIEW = "class:view"
    NOTE_REDACT = "note:redact"
    STUDENT_OVERVIEW_VIEW = "student-overview:view"
    TEACHING_SWITCH = "teaching:switch"
    CATCH_UP_PROGRESS = "catch-up:progress"
    CONTROL_CENTER_VIEW = "control-center:view"
    MY_DAY_VIEW = "my-day:view"
    SESSION_LOG_VIEW = "session-log:view"
    CENTRE_CONFIGURE = "centre:configure"
    EXERCISE_PUBLISH = "exercise:publish"
    EXERCISE_VIEW = "exercise:view"
    EXERCISE_ASSIGN = "exercise:assign"
    EXERCISE_WORK = "exercise:work"
    WORK_GRADE = "work:grade"
    HOMEWORK_ASSIGN = "homework:assign"
    HOMEWORK_WORK = "homework:work"
    ACADEMIC_LEVEL_SET = "academic-level:set"
    CONTENT_ASSIGN = "content:assign"
    CATCH_UP_LIST_VIEW = "catch-up-list:view"
    HELP_ANALYTICS_VIEW = "help-analytics:view"
    NOTIFICATIONS_OWN = "notifications:own"
    PAPER_PRINT = "paper:print"
    PAPER_HAND_IN = "paper:hand-in"
    PAPER_VIEW = "paper:view"
    # What timers do when they fire; only SYSTEM (the scheduler) holds these.
    SESSION_REMIND = "timer:session-remind"
    SESSION_COMPLETE_OVERDUE = "timer:session-complete"
    ATTENDANCE_REMIND = "timer:attendance-remind"
    HELP_REQUEST_ESCALATE = "timer:help-request-escalate"
    CATCH_UP_REMIND = "timer:catch-up-remind"
    CATCH_UP_MARK_OVERDUE = "timer:catch-up-overdue"
    HOMEWORK_REMIND = "timer:homework-remind"
    HOMEWORK_MARK_OVERDUE = "timer:homework-overdue"


_SESSION_STAFF = {Role.CENTER_ADMIN, Role.CENTER_SUPERVISOR, Role.TEACHER}

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.CENTRE_REGISTER: frozenset(),
    Permission.PERSON_REGISTER: frozenset({Role.CENTER_ADMIN}),
    Permission.PERSON_ERASE: frozenset({Role.CENTER_ADMIN}),
    Permission.SESSION_SCHEDULE: frozenset(_SESSION_STAFF),
    Permission.SESSION_RUN: frozenset(_SESSION_STAFF),
    Permission.SESSION_CANCEL: frozenset(_SESSION_STAFF),
    Permission.ENROLMENT_MANAGE: frozenset(_SESSION_STAFF),
    # Move an enrolled student to another lesson while the session is to run or LIVE.
    Permission.LESSON_CHANGE: frozenset(_SESSION_STAFF),
    Permission.ATTENDANCE_MARK: frozenset(_SESSION_STAFF),
    Permission.HELP_REQUEST_RAISE: frozenset({Role.STUDENT}),
    Permission.HELP_REQUEST_HANDLE: frozenset(_SESSION_STAFF),
    Permission.CATCH_UP_ASSIGN: frozenset(_SESSION_STAFF),
    Permission.PRESENCE_RECORD: frozenset({Role.STUDENT}),
    Permission.NOTE_WRITE: frozenset(_SESSION_STAFF),
    Permission.CLASS_MANAGE: frozenset({Role.CENTER_ADMIN, Role.CENTER_SUPERVISOR}),
    Permission.CLASS_VIEW: frozenset(_SESSION_STAFF),
    Permission.NOTE_REDACT: frozenset({Role.CENTER_ADMIN}),
    # A STUDENT sees their own overview, a PARENT their children's, without INTERNAL notes.
    Permission.STUDENT_OVERVIEW_VIEW: frozenset({*_SESSION_STAFF, Role.STUDENT, Role.PARENT}),
    Permission.TEACHING_SWITCH: frozenset(_SESSION_STAFF),
    # A STUDENT only their own catch-ups, a TEACHER those of their sessions.
    Permission.CATCH_UP_PROGRESS: frozenset({*_SESSION_STAFF, Role.STUDENT}),
    # Reading: a TEACHER sees their own sessions, a STUDENT or PARENT only their own rows
    # (enforced with the document in hand, in shared/readmodels/access.py).
    Permission.CONTROL_CENTER_VIEW: frozenset({*_SESSION_STAFF, Role.STUDENT, Role.PARENT}),
    Permission.MY_DAY_VIEW: frozenset(_SESSION_STAFF),
    Permission.SESSION_LOG_VIEW: frozenset({*_SESSION_STAFF, Role.STUDENT, Role.PARENT}),
    Permission.CENTRE_CONFIGURE: frozenset({Role.CENTER_ADMIN}),
    Permission.EXERCISE_PUBLISH: frozenset(_SESSION_STAFF),
    # Students see an exercise's questions, never its answer key.
    Permission.EXERCISE_VIEW: frozenset({*_SESSION_STAFF, Role.STUDENT}),
    Permission.EXERCISE_ASSIGN: frozenset(_SESSION_STAFF),
    Permission.EXERCISE_WORK: frozenset({Role.STUDENT}),
    Permission.WORK_GRADE: frozenset(_SESSION_STAFF),
    Permission.HOMEWORK_ASSIGN: frozenset(_SESSION_STAFF),
    Permission.HOMEWORK_WORK: frozenset({Role.STUDENT}),
    # Paper work: staff print worksheets and mark scans (WORK_GRADE); a STUDENT hands in only
    # their own sheets, a PARENT only their child's; staff hand in any sheet of the centre.
    Permission.PAPER_PRINT: frozenset(_SESSION_STAFF),
    Permission.PAPER_HAND_IN: frozenset({*_SESSION_STAFF, Role.STUDENT, Role.PARENT}),
    Permission.PAPER_VIEW: frozenset({*_SESSION_STAFF, Role.STUDENT, Role.PARENT}),
    # Assess a student's subjects and change their working levels (any student of the centre).
    Permission.ACADEMIC_LEVEL_SET: frozenset(_SESSION_STAFF),
    # Override a student's automatic content sequence, and withdraw the override.
    Permission.CONTENT_ASSIGN: frozenset(_SESSION_STAFF),
    # Centre-wide reports: a TEACHER sees only what concerns their own sessions.
    Permission.CATCH_UP_LIST_VIEW: frozenset(_SESSION_STAFF),
    Permission.HELP_ANALYTICS_VIEW: frozenset(_SESSION_STAFF),
    # Every person reads, marks read and chooses the channels of their own notifications.
    Permission.NOTIFICATIONS_OWN: frozenset(
        {
            Role.CENTER_ADMIN,
            Role.CENTER_SUPERVISOR,
            Role.FINANCE_ADMIN,
            Role.TEACHER,
            Role.PARENT,
            Role.STUDENT,
        }
    ),
    Permission.SESSION_REMIND: frozenset({Role.SYSTEM}),
    Permission.SESSION_COMPLETE_OVERDUE: frozenset({Role.SYSTEM}),
    Permission.ATTENDANCE_REMIND: frozenset({Role.SYSTEM}),
    Permission.HELP_REQUEST_ESCALATE: frozenset({Role.SYSTEM}),
    Permission.CATCH_UP_REMIND: frozenset({Role.SYSTEM}),
    Permission.CATCH_UP_MARK_OVERDUE: frozenset({Role.SYSTEM}),
    Permission.HOMEWORK_REMIND: frozenset({Role.SYSTEM}),
    Permission.HOMEWORK_MARK_OVERDUE: frozenset({Role.SYSTEM}),
}
"""Roles granted each permission. SUPER_ADMIN holds every permission but the timers' and is not
listed."""

TIMER_PERMISSIONS: frozenset[Permission] = frozenset(
    permission for permission, roles in MATRIX.items() if roles == {Role.SYSTEM}
)
"""What the scheduler may do when a timer fires: SYSTEM holds these and nothing else, and no
person (not even SUPER_ADMIN) holds any of them."""


PHRASES: dict[Permission, str] = {
    Permission.CENTRE_REGISTER: "register centres",
    Permission.PERSON_REGISTER: "register people",
    Permission.PERSON_ERASE: "erase a person's personal data",
    Permission.SESSION_SCHEDULE: "schedule sessions",
    Permission.SESSION_RUN: "run sessions",
    Permission.SESSION_CANCEL: "cancel sessions",
    Permission.ENROLMENT_MANAGE: "manage enrolments",
    Permission.LESSON_CHANGE: "change a student's lesson",
    Permission.ATTENDANCE_MARK: "mark attendance",
    Permission.HELP_REQUEST_RAISE: "raise help requests",
    Permission.HELP_REQUEST_HANDLE: "handle help requests",
    Permission.CATCH_UP_ASSIGN: "assign catch-ups",
    Permission.PRESENCE_RECORD: "record presence",
    Permission.NOTE_WRITE: "write notes",
    Permission.CLASS_MANAGE: "manage classes",
    Permission.CLASS_VIEW: "see classes",
    Permission.NOTE_REDACT: "redact notes",
    Permission.STUDENT_OVERVIEW_VIEW: "see a student's overview",
    Permission.TEACHING_SWITCH: "switch between teaching and observing",
    Permission.CATCH_UP_PROGRESS: "work on catch-ups",
    Permission.CONTROL_CENTER_VIEW: "see a session's Control Center",
    Permission.MY_DAY_VIEW: "see My Day",
    Permission.SESSION_LOG_VIEW: "see a session's log",
    Permission.CENTRE_CONFIGURE: "configure the centre",
    Permission.EXERCISE_PUBLISH: "publish exercises",
    Permission.EXERCISE_VIEW: "see exercises",
    Permission.EXERCISE_ASSIGN: "assign exercises",
    Permission.EXERCISE_WORK: "work on exercises",
    Permission.WORK_GRADE: "grade work",
    Permission.HOMEWORK_ASSIGN: "assign homework",
    Permission.HOMEWORK_WORK: "work on homework",
    Permission.ACADEMIC_LEVEL_SET: "set academic levels",
    Permission.CONTENT_ASSIGN: "assign content",
    Permission.CATCH_UP_LIST_VIEW: "see the catch-up list",
    Permission.HELP_ANALYTICS_VIEW: "see help-request analytics",
    Permission.NOTIFICATIONS_OWN: "have notifications",
    Permission.PAPER_PRINT: "print paper work",
    Permission.PAPER_HAND_IN: "hand in paper work",
    Permission.PAPER_VIEW: "see paper work",
    Permission.SESSION_REMIND: "send session reminders",
    Permission.SESSION_COMPLETE_OVERDUE: "complete overdue sessions",
    Permission.ATTENDANCE_REMIND: "send attendance reminders",
    Permission.HELP_REQUEST_ESCALATE: "escalate help requests",
    Permission.CATCH_UP_REMIND: "send catch-up reminders",
    Permission.CATCH_UP_MARK_OVERDUE: "mark catch-ups overdue",
    Permission.HOMEWORK_REMIND: "send homework reminders",
    Permission.HOMEWORK_MARK_OVERDUE: "mark homework overdue",
}
"""What each permission lets its holder do, in words: how a refusal names it."""


def may(role: Role, permission: Permission) -> bool:
    if role is Role.SUPER_ADMIN:
        return permission not in TIMER_PERMISSIONS
    return role in MATRIX[permission]


def require(actor: Actor, permission: Permission) -> None:
    if not may(actor.role, permission):
        raise Forbidden(f"a {actor.role} may not {PHRASES[permission]}")


def system_actor(centre_id: str) -> Actor:
    """SYSTEM in ``centre_id``: who the scheduler is when one of that centre's timers fires."""
    return Actor(user_id=SYSTEM_ACTOR_ID, role=Role.SYSTEM, centre_id=centre_id)
