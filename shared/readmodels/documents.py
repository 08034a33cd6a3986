"""Read-model documents, keyed by kind: what each one holds.

``centre``  one per centre: name, time zone, help SLAs
``person``  one per person: name, role, guardian
``session`` one per session: the Control Center (schedule, status, timing, roster with each
            student's course, lesson, attendance and help requests, catch-ups)
``tutor``   one per tutor: the source of My Day (their sessions, open help requests, the
            catch-ups of their students, work and homework waiting for their grade)
``student`` one per student: their sessions with attendance, catch-ups, help requests and
            work, the notes written about them, their academic profile (per course: school
            grade, working level, level history), content assignments and homework (for the
            student, parent and staff views)
"""

from __future__ import annotations

from typing import Any

CENTRE, PERSON, SESSION, TUTOR, STUDENT = "centre", "person", "session", "tutor", "student"
CLASS = "class"
"""One per class cohort: its teacher, capacity, status and roster."""
CATCH_UP = "catch_up"
"""One per catch-up package: student, session, reason, due date, status and when it moved.
Only the catch-up's own events shape it; the session's title and tutor are joined on reading."""

EXERCISE = "exercise"
"""One per catalogue exercise, with its answer key (views hide the key from students)."""
HOMEWORK = "homework"
"""One per homework: what was set, for whom, by when, the answers, the mark and feedback."""

TUTOR_HISTORY_DAYS = 30
"""A tutor document keeps sessions that ended less than this many days before the event
being applied (not the wall clock, so rebuilds are identical)."""


def new_tutor(tutor_id: str, centre_id: str) -> dict[str, Any]:
    """A tutor document before anything is known about them."""
    return {"tutorId": tutor_id, "centreId": centre_id, "sessions": {}, "openHelp": {}, "catchUps": {},
            "toGrade": {}, "homework": {}}


def new_student(student_id: str, centre_id: str) -> dict[str, Any]:
    """A student document before anything is known about them."""
    return {"studentId": student_id, "centreId": centre_id, "sessions": {}, "notes": {}, "subjects": {},
            "contentAssignments": {}, "homework": {}}
