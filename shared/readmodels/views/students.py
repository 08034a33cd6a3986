"""A student's overview: sessions, attendance, work, homework, XP, catch-ups, notes and
academic profile, as the student, their parent or staff see it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from operator import itemgetter
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from shared.events import (
    ATTENDANCE_STATUSES,
    OPEN_HELP_REQUESTS,
    OPEN_HOMEWORK,
    UNFINISHED_WORK,
    XP_PER_LEVEL,
    ContentAssignmentStatus,
    HomeworkStatus,
    NoteVisibility,
    SessionStatus,
)
from shared.readmodels.documents import (
    RECENT_WORK,
    JsonObject,
    SessionTotals,
    Student,
    StudentAlerts,
    StudentSession,
    as_json,
    listed,
    month_of,
)
from shared.readmodels.times import iso, parse
from shared.readmodels.views.common import JSON_ORDER, Names, help_view, overdue
from shared.readmodels.views.risk import risk_from, risk_of

_PER_SESSION = ("catchUps", "work", "helpRequests")
"""What the overview lists across sessions rather than under each."""
_ATTENDANCE: Final = tuple(status.value for status in ATTENDANCE_STATUSES)
_GRADED: Final = HomeworkStatus.GRADED.value
_CATCH_UP_ORDER: Final = itemgetter("dueAt", "catchUpId")
_WORK_ORDER: Final = itemgetter("assignedAt", "workId")
_NOTE_ORDER: Final = itemgetter("writtenAt", "noteId")
_STAFF_ONLY_LEVEL_FIELDS = ("reason", "changedBy")
_STAFF_ONLY_ASSIGNMENT_FIELDS = ("reason", "assignedBy", "replaces")


def student_overview(
    student: Student,
    name: str | None,
    names: Names,
    time_zone: str,
    now: datetime,
    *,
    staff: bool,
    alerts: StudentAlerts | None = None,
) -> JsonObject:
    """A student's sessions, attendance, catch-ups, notes and academic profile. Students and
    parents see only EXTERNAL notes, and levels and active content without the staff's
    reasons and assessment notes; nobody sees the text of a redacted note. Staff also see the
    risk score (``risk``), worked out from ``alerts`` (the student's :func:`alert_inputs`, as
    the projection keeps them) if given, else from the document; students and parents see the
    facts behind it, not the label."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    sessions = overview_sessions(student)
    # Today wherever the centre is starts within two days of today in UTC: a session that
    # starts further off (compared as text, as documents write times) is not parsed.
    midnight = datetime.combine(today, time.min, tzinfo=UTC)
    after, before = iso(midnight - timedelta(days=2)), iso(midnight + timedelta(days=3))
    whole = {
        s.session_id
        for s in sessions
        if s.enrolled
        and (len(s.starts_at) != len(after) or after <= s.starts_at < before)
        and parse(s.starts_at).astimezone(zone).date() == today
    }
    listed_ids = {s.session_id for s in sessions}
    unlisted = [s for s in student.sessions.values() if s.work and s.session_id not in listed_ids]
    shown_notes = [
        n for n in student.notes.values() if staff or n.visibility is NoteVisibility.EXTERNAL
    ]
    homework_records = list(student.homework.values())
    # What the answer shows of the document, converted to JSON in one call: the listed
    # sessions, without their help requests unless shown whole under "today" (those of a LIVE
    # session are read from the document); the work of the sessions not listed (the latest
    # work handed in or marked may come from them); the catch-ups and work of a session shown
    # whole once more, as their own copies; the homework and the notes shown.
    session_json, unlisted_json, again_json, homework_json, note_json = _as_json_all(
        (
            [s if s.session_id in whole else _without_help(s) for s in sessions],
            [s.work for s in unlisted],
            [(s.catch_ups, s.work) for s in sessions if s.session_id in whole],
            homework_records,
            shown_notes,
        )
    )
    today_json: list[JsonObject] = []
    listed_json: list[JsonObject] = []
    catch_ups: list[JsonObject] = []
    work: list[JsonObject] = []
    again = iter(again_json)
    for session, json in zip(sessions, session_json, strict=True):
        if session.session_id in whole:
            today_json.append(json)
            listed_json.append(_without_parts(json))
            session_catch_ups, session_work = next(again)
        else:
            session_catch_ups = json.pop("catchUps")
            session_work = json.pop("work")
            del json["helpRequests"]
            listed_json.append(json)
        if session_catch_ups:
            for key, row in session_catch_ups.items():
                row["sessionId"] = session.session_id
                row["sessionTitle"] = session.title
                row["overdue"] = overdue(session.catch_ups[key], now)
                catch_ups.append(row)
        if session_work:
            _of_session(session, session_work, work)
    for session, rows in zip(unlisted, unlisted_json, strict=True):
        _of_session(session, rows, work)
    catch_ups.sort(key=_CATCH_UP_ORDER)
    work.sort(key=_WORK_ORDER, reverse=True)
    for row, note in zip(note_json, shown_notes, strict=True):
        row["authorName"] = names.get(note.author_id)
    notes = sorted(note_json, key=_NOTE_ORDER, reverse=True)
    open_help = [
        {**help_view(h, now), "sessionTitle": s.title}
        for s in sessions
        if s.status is SessionStatus.LIVE
        for h in s.help_requests.values()
        if h.status in OPEN_HELP_REQUESTS
    ]
    for row, record in zip(homework_json, homework_records, strict=True):
        row["overdue"] = overdue(record, now, OPEN_HOMEWORK)
    homework = sorted(homework_json, key=_homework_order)
    totals = student.totals if isinstance(student.totals, SessionTotals) else None
    xp = (totals.work_xp if totals else sum(w["xpAwarded"] for w in work)) + sum(
        h["xpAwarded"] for h in homework
    )
    attendance = (
        totals.attendance
        if totals
        else Counter(s.attendance.value for s in sessions if s.attendance)
    )
    current: list[JsonObject] = []
    recent: list[JsonObject] = []
    for row in work:
        (current if row["status"] in UNFINISHED_WORK else recent).append(row)
    overview: JsonObject = {
        "studentId": student.student_id,
        "name": name,
        "timeZone": time_zone,
        "today": today_json,
        "sessions": listed_json,
        "exercises": {"current": current, "recent": recent[:RECENT_WORK]},
        "openHelpRequest": open_help[0] if open_help else None,
        "homework": homework,
        "paper": sorted(
            (as_json(p) for p in (student.paper or {}).values()),
            key=lambda p: (p["uploadedAt"], p["uploadId"]),
        ),
        "xp": {
            "total": xp,
            "level": xp // XP_PER_LEVEL + 1,
            "toNextLevel": XP_PER_LEVEL - xp % XP_PER_LEVEL,
        },
        "catchUps": catch_ups,
        "notes": notes,
        "attendanceSummary": {status: attendance.get(status, 0) for status in _ATTENDANCE},
        "olderSessions": {
            "count": totals.count - len(sessions) if totals else 0,
            "months": list(reversed(older_months(student, sessions))),
        },
    } | _academic_profile(student, names, staff=staff)
    if staff:
        overview["risk"] = (
            risk_of(student, now) if alerts is None else risk_from(alerts, now)
        ).as_json()
    return overview


def overview_sessions(student: Student) -> list[StudentSession]:
    """The sessions the overview lists, oldest first (:func:`listed`). A document written
    before the student's months kept every session, and lists them all."""
    if isinstance(student.months, dict):
        return listed(student.sessions.values())
    return sorted(student.sessions.values(), key=lambda s: (s.starts_at, s.session_id))


def _without_parts(session: JsonObject) -> JsonObject:
    """A session's JSON without what the overview lists across sessions (a copy)."""
    json = dict(session)
    for key in _PER_SESSION:
        json.pop(key, None)
    return json


def _without_help(session: StudentSession) -> StudentSession:
    """``session`` with no help requests (a shallow copy)."""
    return msgspec.structs.replace(session, help_requests={})


def _homework_order(row: JsonObject) -> tuple[bool, str, str]:
    """Homework not graded first, then by due time and id."""
    return row["status"] == _GRADED, row["dueAt"], row["homeworkId"]


def _of_session(
    session: StudentSession, work: dict[str, JsonObject], into: list[JsonObject]
) -> None:
    """Add the JSON of a session's ``work`` to ``into``, each row named with its session (in
    place)."""
    session_id, title = session.session_id, session.title
    for row in work.values():
        row["sessionId"] = session_id
        row["sessionTitle"] = title
        into.append(row)


def _as_json_all(records: Any) -> Any:
    """:func:`as_json` of every record in ``records`` (lists, tuples and dicts of them),
    converted together."""
    return msgspec.to_builtins(records, order=JSON_ORDER)


def older_months(student: Student, shown: Sequence[StudentSession] | None = None) -> list[str]:
    """The months (``YYYY-MM``, oldest first) with sessions the overview leaves out (``shown``:
    its :func:`overview_sessions`, if worked out already)."""
    if not isinstance(student.months, dict):
        return []
    placement = student.placement if isinstance(student.placement, dict) else {}
    listed_in: dict[str, int] = {}
    for session in overview_sessions(student) if shown is None else shown:
        month = placement.get(session.session_id)
        if month is None:
            month = month_of(session.starts_at)
        listed_in[month] = listed_in.get(month, 0) + 1
    return sorted(
        m for m, totals in student.months.items() if totals.sessions > listed_in.get(m, 0)
    )


def _academic_profile(student: Student, names: Names, *, staff: bool) -> JsonObject:
    """Per course: school grade, working level, ``gap`` (levels below the school grade;
    negative when working above it) and the level history; the active content assignments,
    and for staff the ended ones and every reason."""
    subjects = []
    for subject in sorted(student.subjects.values(), key=lambda s: s.course_id):
        history = [as_json(h) for h in reversed(subject.history)]
        view: JsonObject = {
            "courseId": subject.course_id,
            "schoolGrade": subject.school_grade,
            "workingLevel": subject.working_level,
            "gap": subject.school_grade - subject.working_level,
            "lastAssessedAt": subject.last_assessed_at,
        }
        if staff:
            view |= {
                "assessedBy": subject.assessed_by,
                "assessedByName": names.get(subject.assessed_by),
                "assessmentNotes": subject.assessment_notes,
                "history": [{**h, "changedByName": names.get(h["changedBy"])} for h in history],
            }
        else:
            view["history"] = [
                {k: v for k, v in h.items() if k not in _STAFF_ONLY_LEVEL_FIELDS} for h in history
            ]
        subjects.append(view)
    assignments = student.content_assignments.values()
    active = sorted(
        (a for a in assignments if a.status is ContentAssignmentStatus.ACTIVE),
        key=lambda a: a.course_id,
    )
    profile: JsonObject = {"academicProfile": subjects}
    if not staff:
        profile["contentAssignments"] = [
            {k: v for k, v in as_json(a).items() if k not in _STAFF_ONLY_ASSIGNMENT_FIELDS}
            for a in active
        ]
        return profile
    ended = sorted(
        (a for a in assignments if a.status is not ContentAssignmentStatus.ACTIVE),
        key=lambda a: (a.ended_at or "", a.assignment_id),
        reverse=True,
    )
    profile["contentAssignments"] = [
        {**as_json(a), "assignedByName": names.get(a.assigned_by)} for a in active
    ]
    profile["endedContentAssignments"] = [
        {**as_json(a), "assignedByName": names.get(a.assigned_by)} for a in ended
    ]
    return profile
