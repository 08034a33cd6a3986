"""Read-model documents: one msgspec struct per kind of document and per row inside one.

A document is stored as JSON (camelCase keys in sorted order) under its kind and a key; the
store decodes it into its struct once, and the projector, the views and the access rules work
on the struct.

============ ==================================================================================
kind         one per … : what it holds
============ ==================================================================================
``centre``   centre: name, time zone, help SLAs, the longest session
``person``   person: name, role, guardian
``session``  session: the Control Center (schedule, status, timing, each student's course,
             lesson, attendance with who marked it, presence, teach/observe time, help
             requests, catch-ups and exercise work; what the scheduler recorded: its
             reminder, the attendance reminder, an automatic completion, escalations)
``tutor``    tutor: the source of My Day (their sessions, open help requests of live
             sessions, their students' open catch-ups, work and homework to grade)
``student``  student: their sessions with attendance, catch-ups, help requests and work,
             the notes about them, their academic profile, content assignments, homework
``exercise`` catalogue exercise, with its answer key (views hide it from students)
``homework`` homework: what was set, for whom, by when, the answers, the mark
``class``    class: teacher, capacity, status and members
``catch_up`` catch-up package, shaped only by its own events
``inbox``    person: their notifications, newest first, read or not
``centre_staff`` centre: its supervisors and admins (told of escalations)
``notification_channels`` centre: its webhook and e-mail settings (the secret never shown)
``contact``  person: their name and e-mail address, for e-mail notifications
``student_sessions`` student and month: their sessions of that month (placed once, never
             moved); the ``student`` document keeps the month's totals and a window
``student_risk`` student: what My Day reads of them (their latest marks and scores, open
             homework), a small copy of their ``student`` document
``help_requests`` tutor and month: the help requests raised by their students that month
``help_index`` centre: each tutor's months of help requests
``open_catch_ups`` centre: its open catch-ups, and counts of the finished ones
``closed_catch_ups`` centre and month: the finished catch-ups due that month
``paper``    upload of paper work: its pages, the work it was filed against, the ink put on
             it in order (erased ink kept, for replaying the marking), voice comment, rubric
             score, feedback, when it was handed back
============ ==================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.readmodels.documents.base import (
    D,
    Document,
    Instant,
    JsonObject,
    Kind,
    Record,
    as_json,
    encode,
)
from shared.readmodels.documents.catalogue import Exercise, ExerciseQuestion, Homework
from shared.readmodels.documents.classes import CatchUp, ClassCohort, ClassMember
from shared.readmodels.documents.directory import Centre, Person
from shared.readmodels.documents.indexes import (
    CatchUpEntry,
    ClosedCatchUps,
    HelpIndex,
    HelpRequestsOfMonth,
    OpenCatchUps,
    OpenCatchUpsSummary,
    closed_catch_ups_key,
    help_month_key,
    month_of,
)
from shared.readmodels.documents.log import LogRow
from shared.readmodels.documents.notifications import (
    CentreStaff,
    Contact,
    Inbox,
    InboxItem,
    NotificationChannels,
)
from shared.readmodels.documents.paper import (
    Paper,
    PaperAnnotation,
    PaperPage,
    PaperRouting,
    PaperScore,
    PaperStatus,
    PaperSummary,
    PaperVoiceComment,
    summary_of,
)
from shared.readmodels.documents.sessions import (
    AttendanceReminder,
    HelpRequest,
    Presence,
    Seat,
    SeatCatchUp,
    Session,
    Teaching,
    Work,
    work_of,
)
from shared.readmodels.documents.students import (
    RECENT_WORK,
    STUDENT_RECENT_SESSIONS,
    AbsentFrom,
    ContentAssignment,
    LevelChange,
    MonthTotals,
    Note,
    OpenHomework,
    SessionTotals,
    Student,
    StudentAlerts,
    StudentHistory,
    StudentSession,
    Subject,
    listed,
    pinned,
    student_history_key,
    upcoming,
)
from shared.readmodels.documents.tutors import (
    HomeworkSummary,
    ToGrade,
    Tutor,
    TutorCatchUp,
    TutorSession,
)

CENTRE: Final = Kind("centre", Centre)
PERSON: Final = Kind("person", Person)
SESSION: Final = Kind("session", Session)
TUTOR: Final = Kind("tutor", Tutor)
STUDENT: Final = Kind("student", Student)
EXERCISE: Final = Kind("exercise", Exercise)
HOMEWORK: Final = Kind("homework", Homework)
CLASS: Final = Kind("class", ClassCohort)
CATCH_UP: Final = Kind("catch_up", CatchUp)
INBOX: Final = Kind("inbox", Inbox)
CENTRE_STAFF: Final = Kind("centre_staff", CentreStaff)
CHANNELS: Final = Kind("notification_channels", NotificationChannels)
CONTACT: Final = Kind("contact", Contact)
PAPER: Final = Kind("paper", Paper)
HELP_REQUESTS: Final = Kind("help_requests", HelpRequestsOfMonth)
HELP_INDEX: Final = Kind("help_index", HelpIndex)
OPEN_CATCH_UPS: Final = Kind("open_catch_ups", OpenCatchUps)
CLOSED_CATCH_UPS: Final = Kind("closed_catch_ups", ClosedCatchUps)
STUDENT_SESSIONS: Final = Kind("student_sessions", StudentHistory)
STUDENT_RISK: Final = Kind("student_risk", Student)
"""Written by earlier releases (a copy of the student's document cut to what the risk score
reads); My Day still reads it where there is no ``student_alerts`` yet."""
STUDENT_ALERTS: Final = Kind("student_alerts", StudentAlerts)

KINDS: Final[Mapping[str, Kind[Any]]] = {
    kind.name: kind
    for kind in (
        CENTRE,
        PERSON,
        SESSION,
        TUTOR,
        STUDENT,
        EXERCISE,
        HOMEWORK,
        CLASS,
        CATCH_UP,
        INBOX,
        CENTRE_STAFF,
        CHANNELS,
        CONTACT,
        PAPER,
        HELP_REQUESTS,
        HELP_INDEX,
        OPEN_CATCH_UPS,
        CLOSED_CATCH_UPS,
        STUDENT_SESSIONS,
        STUDENT_RISK,
        STUDENT_ALERTS,
    )
}
"""Every kind of document, by name."""


def kind_named(name: str) -> Kind[Document]:
    """The kind of document called ``name``; ``KeyError`` for none."""
    kind: Kind[Document] = KINDS[name]
    return kind


__all__ = [
    "CATCH_UP",
    "CENTRE",
    "CENTRE_STAFF",
    "CHANNELS",
    "CLASS",
    "CLOSED_CATCH_UPS",
    "CONTACT",
    "EXERCISE",
    "HELP_INDEX",
    "HELP_REQUESTS",
    "HOMEWORK",
    "INBOX",
    "KINDS",
    "OPEN_CATCH_UPS",
    "PAPER",
    "PERSON",
    "RECENT_WORK",
    "SESSION",
    "STUDENT",
    "STUDENT_ALERTS",
    "STUDENT_RECENT_SESSIONS",
    "STUDENT_RISK",
    "STUDENT_SESSIONS",
    "TUTOR",
    "AbsentFrom",
    "AttendanceReminder",
    "CatchUp",
    "CatchUpEntry",
    "Centre",
    "CentreStaff",
    "ClassCohort",
    "ClassMember",
    "ClosedCatchUps",
    "Contact",
    "ContentAssignment",
    "D",
    "Document",
    "Exercise",
    "ExerciseQuestion",
    "HelpIndex",
    "HelpRequest",
    "HelpRequestsOfMonth",
    "Homework",
    "HomeworkSummary",
    "Inbox",
    "InboxItem",
    "Instant",
    "JsonObject",
    "Kind",
    "LevelChange",
    "LogRow",
    "MonthTotals",
    "Note",
    "NotificationChannels",
    "OpenCatchUps",
    "OpenCatchUpsSummary",
    "OpenHomework",
    "Paper",
    "PaperAnnotation",
    "PaperPage",
    "PaperRouting",
    "PaperScore",
    "PaperStatus",
    "PaperSummary",
    "PaperVoiceComment",
    "Person",
    "Presence",
    "Record",
    "Seat",
    "SeatCatchUp",
    "Session",
    "SessionTotals",
    "Student",
    "StudentAlerts",
    "StudentHistory",
    "StudentSession",
    "Subject",
    "Teaching",
    "ToGrade",
    "Tutor",
    "TutorCatchUp",
    "TutorSession",
    "Work",
    "as_json",
    "closed_catch_ups_key",
    "encode",
    "help_month_key",
    "kind_named",
    "listed",
    "month_of",
    "pinned",
    "student_history_key",
    "summary_of",
    "upcoming",
    "work_of",
]
