"""A student's overview: sessions, attendance, work, homework, XP, catch-ups, notes and
academic profile, as the student, their parent or staff see it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

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
    StudentSession,
    as_json,
    listed,
    month_of,
)
from shared.readmodels.times import parse
from shared.readmodels.views.common import Names, help_view, overdue
from shared.readmodels.views.risk import risk_of

_PER_SESSION = ("catchUps", "work", "helpRequests")
"""What the overview lists across sessions rather than under each."""
_STAFF_ONLY_LEVEL_FIELDS = ("reason", "changedBy")
_STAFF_ONLY_ASSIGNMENT_FIELDS = ("reason", "assignedBy", "replaces")


def student_overview(
    student: Student, name: str | None, names: Names, time_zone: str, now: datetime, *, staff: bool
) -> JsonObject:
    """A student's sessions, attendance, catch-ups, notes and academic profile. Students and
    parents see only EXTERNAL notes, and levels and active content without the staff's
    reasons and assessment notes; nobody sees the text of a redacted note. Staff also see the
    risk score (``risk``); students and parents see the facts behind it, not the label."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    sessions = overview_sessions(student)
    catch_ups = sorted(
        (
            {
                **as_json(c),
                "sessionId": s.session_id,
                "sessionTitle": s.title,
                "overdue": overdue(c, now),
            }
            for s in sessions
            for c in s.catch_ups.values()
        ),
        key=lambda c: (c["dueAt"], c["catchUpId"]),
    )
    notes = sorted(
        (
            {**as_json(n), "authorName": names.get(n.author_id)}
            for n in student.notes.values()
            if staff or n.visibility is NoteVisibility.EXTERNAL
        ),
        key=lambda n: (n["writtenAt"], n["noteId"]),
        reverse=True,
    )
    work = sorted(
        (
            {**as_json(w), "sessionId": s.session_id, "sessionTitle": s.title}
            for s in student.sessions.values()  # the latest handed in or marked are among them
            for w in s.work.values()
        ),
        key=lambda w: (w["assignedAt"], w["workId"]),
        reverse=True,
    )
    open_help = [
        {**help_view(h, now), "sessionTitle": s.title}
        for s in sessions
        if s.status is SessionStatus.LIVE
        for h in s.help_requests.values()
        if h.status in OPEN_HELP_REQUESTS
    ]
    homework = sorted(
        (
            {**as_json(h), "overdue": overdue(h, now, OPEN_HOMEWORK)}
            for h in student.homework.values()
        ),
        key=lambda h: (h["status"] == HomeworkStatus.GRADED, h["dueAt"], h["homeworkId"]),
    )
    totals = student.totals if isinstance(student.totals, SessionTotals) else None
    xp = (totals.work_xp if totals else sum(w["xpAwarded"] for w in work)) + sum(
        h["xpAwarded"] for h in homework
    )
    attendance = (
        totals.attendance
        if totals
        else Counter(s.attendance.value for s in sessions if s.attendance)
    )
    every_session = [as_json(s) for s in sessions]
    overview: JsonObject = {
        "studentId": student.student_id,
        "name": name,
        "timeZone": time_zone,
        "today": [
            json
            for s, json in zip(sessions, every_session, strict=True)
            if parse(s.starts_at).astimezone(zone).date() == today and s.enrolled
        ],
        "sessions": [
            {k: v for k, v in json.items() if k not in _PER_SESSION} for json in every_session
        ],
        "exercises": {
            "current": [w for w in work if w["status"] in UNFINISHED_WORK],
            "recent": [w for w in work if w["status"] not in UNFINISHED_WORK][:RECENT_WORK],
        },
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
        "attendanceSummary": {
            status.value: attendance.get(status.value, 0) for status in ATTENDANCE_STATUSES
        },
        "olderSessions": {
            "count": totals.count - len(sessions) if totals else 0,
            "months": list(reversed(older_months(student))),
        },
    } | _academic_profile(student, names, staff=staff)
    if staff:
        overview["risk"] = risk_of(student, now).as_json()
    return overview


def overview_sessions(student: Student) -> list[StudentSession]:
    """The sessions the overview lists, oldest first (:func:`listed`). A document written
    before the student's months kept every session, and lists them all."""
    if isinstance(student.months, dict):
        return listed(student.sessions.values())
    return sorted(student.sessions.values(), key=lambda s: (s.starts_at, s.session_id))


def older_months(student: Student) -> list[str]:
    """The months (``YYYY-MM``, oldest first) with sessions the overview leaves out."""
    if not isinstance(student.months, dict):
        return []
    placement = student.placement if isinstance(student.placement, dict) else {}
    shown = Counter(
        placement.get(s.session_id, month_of(s.starts_at)) for s in overview_sessions(student)
    )
    return sorted(m for m, totals in student.months.items() if totals.sessions > shown[m])


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
