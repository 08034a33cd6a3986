"""What a person is shown, computed from read-model documents at the moment of asking.

Documents hold facts and timestamps; views add what depends on the clock (waiting times,
what is overdue, what is today in the centre's time zone) and on who asks.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import statistics
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import (
    ATTENDANCE_STATUSES,
    HELP_PRIORITIES,
    HELP_PRIORITY_RANK,
    OPEN_CATCH_UPS,
    OPEN_HELP_REQUESTS,
    OPEN_HOMEWORK,
    UNFINISHED_WORK,
    XP_PER_LEVEL,
)
from shared.readmodels.store import Doc

IDLE_AFTER_SECONDS = 5 * 60
"""A student present but silent this long shows as IDLE."""
ATTENTION_AFTER_SECONDS = 10 * 60
"""A student in a live session whom the tutor has not taught or helped this long (since they
joined, if never) needs attention: nobody is forgotten in a 1:5 session."""


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def overdue(work: Doc, now: datetime, still_open: frozenset[str] = OPEN_CATCH_UPS) -> bool:
    """Still open past its ``dueAt`` (a catch-up, or homework with ``OPEN_HOMEWORK``)."""
    return work["status"] in still_open and now > parse(work["dueAt"])


def _seconds(start: str, now: datetime) -> int:
    return max(0, int((now - parse(start)).total_seconds()))


def control_center(session: Doc, names: dict[str, str], now: datetime,
                   only_students: set[str] | None = None) -> Doc:
    """The live picture of one session; ``only_students`` limits the roster (students, parents)."""
    students = []
    for student in session["students"].values():
        if not student["enrolled"] and student["attendance"] is None:
            continue
        if only_students is not None and student["studentId"] not in only_students:
            continue
        help_requests = sorted((_help_view(h, now) for h in student["helpRequests"].values()),
                               key=lambda h: h["raisedAt"])
        presence = student.get("presence")
        if presence is None:
            activity = "NOT_JOINED"
        elif not presence["present"]:
            activity = "AWAY"
        else:
            last_sign = max(presence["lastSeenAt"], student.get("lastActivityAt") or "")
            activity = "IDLE" if _seconds(last_sign, now) >= IDLE_AFTER_SECONDS else "ACTIVE"
        work = sorted(student.get("work", {}).values(), key=lambda w: (w["assignedAt"], w["workId"]))
        unfinished = [w for w in work if w["status"] in UNFINISHED_WORK]
        teaching = student.get("teaching") or {"mode": "OBSERVE", "teachingSeconds": 0, "since": None}
        teaching_seconds = teaching["teachingSeconds"] + (_seconds(teaching["since"], now) if teaching["since"] else 0)
        attended = student.get("lastAttendedAt")
        joined = (presence or {}).get("lastJoinedAt") or (presence or {}).get("joinedAt")
        waiting_since = max(attended or "", joined or "") or None  # time away is not time left alone
        unattended = (None if session["status"] != "LIVE" or not waiting_since or activity not in ("ACTIVE", "IDLE")
                      else 0 if teaching["since"] else _seconds(waiting_since, now))  # being taught now
        catch_ups = sorted(({**c, "overdue": overdue(c, now)} for c in student["catchUps"].values()),
                           key=lambda c: c["dueAt"])
        students.append({**student, "name": names.get(student["studentId"]), "activity": activity,
                         "teaching": {**teaching, "teachingSeconds": teaching_seconds},
                         "sinceAttendedSeconds": _seconds(attended, now) if attended else None,
                         "unattendedSeconds": unattended,
                         "needsAttention": unattended is not None and unattended >= ATTENTION_AFTER_SECONDS,
                         "helpRequests": help_requests, "catchUps": catch_ups, "work": work,
                         "currentExercise": unfinished[-1] if unfinished else None,
                         "workToGrade": sum(1 for w in work if w["status"] == "SUBMITTED"),
                         "openHelpRequest": next((h for h in help_requests if h["status"] in OPEN_HELP_REQUESTS), None)})
    students.sort(key=_most_urgent_first)
    timing: dict[str, Any] = {"scheduledMinutes": int((parse(session["endsAt"]) - parse(session["startsAt"]))
                                                      .total_seconds() // 60)}
    if session["status"] == "LIVE" and session["startedAt"]:
        timing["elapsedSeconds"] = _seconds(session["startedAt"], now)
        timing["remainingSeconds"] = int((parse(session["endsAt"]) - now).total_seconds())
    elif session["status"] == "SCHEDULED":
        timing["startsInSeconds"] = int((parse(session["startsAt"]) - now).total_seconds())
    body = {key: value for key, value in session.items() if key != "students"}
    return body | {"tutorName": names.get(session["tutorId"]), "timing": timing, "students": students,
                   "openHelpRequests": sum(1 for s in students if s["openHelpRequest"]),
                   "workToGrade": sum(s["workToGrade"] for s in students),
                   "needingAttention": sum(1 for s in students if s["needsAttention"])}


def _most_urgent_first(student: Doc) -> tuple[Any, ...]:
    """Waiting for help (by priority, then the longest waiting), then needing attention (the
    longest unattended), then everyone else by name."""
    help_request = student["openHelpRequest"] or {}
    return (not help_request, HELP_PRIORITY_RANK.get(help_request.get("priority", ""), 9),
            help_request.get("raisedAt", ""), not student["needsAttention"],
            -(student["unattendedSeconds"] or 0) if student["needsAttention"] else 0,
            student["name"] or "", student["studentId"])


def _help_view(request: Doc, now: datetime) -> Doc:
    """A help request with how long it has waited and how fast it was answered."""
    open_ = request["status"] in OPEN_HELP_REQUESTS
    first_response = request.get("acknowledgedAt") or request.get("startedAt")
    finished = request.get("resolvedAt")
    return {**request,
            "waitingSeconds": _seconds(request["raisedAt"], now) if open_ else None,
            "slaBreached": open_ and now > parse(request["slaDueAt"]),
            "responseSeconds": _seconds(request["raisedAt"], parse(first_response)) if first_response else None,
            "resolutionSeconds": _seconds(request["raisedAt"], parse(finished)) if finished else None}


def my_day(tutor: Doc, time_zone: str, names: dict[str, str], now: datetime,
           students: dict[str, Doc] | None = None) -> Doc:
    """``students``: the documents of the students of the tutor's sessions (for absences)."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    sessions = sorted((s for s in tutor["sessions"].values()
                       if parse(s["startsAt"]).astimezone(zone).date() == today),
                      key=lambda s: (s["startsAt"], s["sessionId"]))
    sessions = [{**s, "studentNames": [names.get(i) for i in s["students"]]} for s in sessions]
    upcoming = [s for s in sessions if s["status"] == "LIVE"] or [
        s for s in sessions if s["status"] == "SCHEDULED" and parse(s["endsAt"]) > now]
    help_requests = sorted(
        ({**_help_view(h, now), "studentName": names.get(h["studentId"])} for h in tutor["openHelp"].values()),
        key=lambda h: (HELP_PRIORITY_RANK.get(h["priority"], 9), h["raisedAt"]))
    catch_ups = [{**c, "studentName": names.get(c["studentId"]), "overdue": overdue(c, now)}
                 for c in tutor["catchUps"].values() if c["status"] in OPEN_CATCH_UPS]
    catch_ups.sort(key=lambda c: (c["dueAt"], c["catchUpId"]))
    to_grade = [{**w, "kind": "EXERCISE", "studentName": names.get(w["studentId"])}
                for w in tutor["toGrade"].values()]
    to_grade += [{**h, "kind": "HOMEWORK", "studentName": names.get(h["studentId"])}
                 for h in tutor["homework"].values() if h["status"] == "SUBMITTED"]
    to_grade.sort(key=lambda w: (w["submittedAt"], w.get("workId") or w.get("homeworkId")))
    alerts = [{"type": "OVERLAPPING_SESSIONS", "sessionIds": [a["sessionId"], b["sessionId"]],
               "message": f"{a['title']} overlaps {b['title']}"}
              for i, a in enumerate(sessions) for b in sessions[i + 1:]
              if a["status"] != "CANCELLED" and b["status"] != "CANCELLED"
              and a["startsAt"] < b["endsAt"] and b["startsAt"] < a["endsAt"]]
    alerts += [{"type": "HELP_SLA_BREACHED", "helpRequestId": h["helpRequestId"],
                "sessionId": h["sessionId"],
                "message": f"{h['studentName'] or 'a student'} has waited {h['waitingSeconds'] // 60} min "
                           f"({h['priority']})"}
               for h in help_requests if h["slaBreached"]]
    absences = repeated_absences(students or {}, names)
    alerts += [{"type": "REPEATED_ABSENCES", "studentId": a["studentId"],
                "sessionIds": [s["sessionId"] for s in a["sessions"]],
                "message": f"{a['studentName'] or 'a student'} was absent from their last "
                           f"{a['consecutiveAbsences']} sessions"}
               for a in absences]
    return {
        "tutorId": tutor["tutorId"], "tutorName": names.get(tutor["tutorId"]), "date": today.isoformat(),
        "timeZone": time_zone, "sessions": sessions, "next": upcoming[0] if upcoming else None,
        "openHelpRequests": help_requests,
        "catchUps": {"pending": [c for c in catch_ups if not c["overdue"]],
                     "overdue": [c for c in catch_ups if c["overdue"]]},
        "toGrade": to_grade,
        "alerts": alerts,
        "repeatedAbsences": absences,
        "stats": {"sessionsToday": len(sessions), "toGrade": len(to_grade),
                  "completed": sum(1 for s in sessions if s["status"] == "COMPLETED"),
                  "openHelpRequests": len(help_requests),
                  "overdueCatchUps": sum(1 for c in catch_ups if c["overdue"]),
                  "repeatedAbsences": len(absences)},
    }


def merge_patch(before: Any, after: Any) -> Any:
    """The RFC 7386 JSON merge patch that turns ``before`` into ``after``."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            if isinstance(value, dict) and isinstance(before[key], dict):
                patch[key] = merge_patch(before[key], value)
            else:
                patch[key] = value
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def utcnow() -> datetime:
    return datetime.now(UTC)


def student_overview(student: Doc, name: str | None, names: dict[str, str], time_zone: str,
                     now: datetime, *, staff: bool) -> Doc:
    """A student's sessions, attendance, catch-ups, notes and academic profile. Students and
    parents see only EXTERNAL notes, and levels and active content without the staff's reasons
    and assessment notes; nobody sees the text of a redacted note."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    sessions = sorted(student["sessions"].values(), key=lambda s: (s["startsAt"], s["sessionId"]))
    catch_ups = sorted(
        ({**c, "sessionId": s["sessionId"], "sessionTitle": s["title"],
          "overdue": overdue(c, now)}
         for s in sessions for c in s["catchUps"].values()),
        key=lambda c: (c["dueAt"], c["catchUpId"]))
    notes = sorted(({**n, "authorName": names.get(n["authorId"])} for n in student["notes"].values()
                    if staff or n["visibility"] == "EXTERNAL"),
                   key=lambda n: (n["writtenAt"], n["noteId"]), reverse=True)
    marked = [s["attendance"] for s in sessions if s["attendance"]]
    work = sorted(({**w, "sessionId": s["sessionId"], "sessionTitle": s["title"]}
                   for s in sessions for w in s.get("work", {}).values()),
                  key=lambda w: (w["assignedAt"], w["workId"]), reverse=True)
    open_help = [{**_help_view(h, now), "sessionTitle": s["title"]} for s in sessions if s["status"] == "LIVE"
                 for h in s.get("helpRequests", {}).values() if h["status"] in OPEN_HELP_REQUESTS]
    homework = sorted(({**h, "overdue": overdue(h, now, OPEN_HOMEWORK)}
                       for h in student["homework"].values()),
                      key=lambda h: (h["status"] == "GRADED", h["dueAt"], h["homeworkId"]))
    xp = sum(w["xpAwarded"] for w in work) + sum(h["xpAwarded"] for h in homework)
    return {
        "studentId": student["studentId"], "name": name, "timeZone": time_zone,
        "today": [s for s in sessions if parse(s["startsAt"]).astimezone(zone).date() == today
                  and s["enrolled"]],
        "sessions": [{k: v for k, v in s.items() if k not in ("catchUps", "work", "helpRequests")}
                     for s in sessions],
        "exercises": {"current": [w for w in work if w["status"] in UNFINISHED_WORK],
                      "recent": [w for w in work if w["status"] not in UNFINISHED_WORK][:20]},
        "openHelpRequest": open_help[0] if open_help else None,
        "homework": homework,
        "xp": {"total": xp, "level": xp // XP_PER_LEVEL + 1,
               "toNextLevel": XP_PER_LEVEL - xp % XP_PER_LEVEL},
        "catchUps": catch_ups,
        "notes": notes,
        "attendanceSummary": {status.value: marked.count(status) for status in ATTENDANCE_STATUSES},
    } | _academic_profile(student, names, staff=staff)


_STAFF_ONLY_LEVEL_FIELDS = ("reason", "changedBy")
_STAFF_ONLY_ASSIGNMENT_FIELDS = ("reason", "assignedBy", "replaces")


def _academic_profile(student: Doc, names: dict[str, str], *, staff: bool) -> Doc:
    """Per course: school grade, working level, ``gap`` (levels below the school grade; negative
    when working above it) and the level history; the active content assignments, and for staff
    the ended ones and every reason."""
    subjects = []
    for subject in sorted(student["subjects"].values(), key=lambda s: s["courseId"]):
        history = list(reversed(subject["history"]))
        view = {"courseId": subject["courseId"], "schoolGrade": subject["schoolGrade"],
                "workingLevel": subject["workingLevel"],
                "gap": subject["schoolGrade"] - subject["workingLevel"],
                "lastAssessedAt": subject["lastAssessedAt"]}
        if staff:
            view |= {"assessedBy": subject["assessedBy"], "assessedByName": names.get(subject["assessedBy"]),
                     "assessmentNotes": subject["assessmentNotes"],
                     "history": [{**h, "changedByName": names.get(h["changedBy"])} for h in history]}
        else:
            view["history"] = [{k: v for k, v in h.items() if k not in _STAFF_ONLY_LEVEL_FIELDS}
                               for h in history]
        subjects.append(view)
    assignments = student["contentAssignments"].values()
    active = sorted((a for a in assignments if a["status"] == "ACTIVE"), key=lambda a: a["courseId"])
    profile: Doc = {"academicProfile": subjects}
    if not staff:
        profile["contentAssignments"] = [
            {k: v for k, v in a.items() if k not in _STAFF_ONLY_ASSIGNMENT_FIELDS} for a in active]
        return profile
    ended = sorted((a for a in assignments if a["status"] != "ACTIVE"),
                   key=lambda a: (a["endedAt"], a["assignmentId"]), reverse=True)
    profile["contentAssignments"] = [{**a, "assignedByName": names.get(a["assignedBy"])} for a in active]
    profile["endedContentAssignments"] = [{**a, "assignedByName": names.get(a["assignedBy"])} for a in ended]
    return profile


def exercise(doc: Doc, *, with_key: bool) -> Doc:
    """An exercise of the catalogue; without the answer key for those who answer it."""
    if with_key:
        return doc
    return {**doc, "questions": [{k: v for k, v in q.items() if k not in ("acceptedAnswers", "tolerance")}
                                 for q in doc["questions"]]}


# --- the catch-up list ---------------------------------------------------------------------


def catch_up_row(catch_up: Doc, session: Doc, names: dict[str, str], now: datetime) -> Doc:
    """One catch-up with its session's title and tutor, and whether (and how long) it is overdue."""
    late = overdue(catch_up, now)
    return {**catch_up, "studentName": names.get(catch_up["studentId"]),
            "sessionTitle": session["title"], "sessionStartsAt": session["startsAt"],
            "tutorId": session["tutorId"], "tutorName": names.get(session["tutorId"]),
            "overdue": late, "overdueSeconds": _seconds(catch_up["dueAt"], now) if late else None}


def catch_up_urgency(catch_up: Doc) -> tuple[int, str, str]:
    """Open catch-ups first, the earliest due (so the longest overdue) at the top; then the
    finished ones. It depends on nothing but the document, so pages stay stable."""
    return (0 if catch_up["status"] in OPEN_CATCH_UPS else 1, catch_up["dueAt"], catch_up["catchUpId"])


def page_cursor(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def parse_page_cursor(cursor: str) -> tuple[int, str, str]:
    """The key a ``page_cursor`` holds; ``ValueError`` for anything it did not make."""
    try:
        rank, due, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as error:
        raise ValueError("not a cursor this API returned") from error
    if not (isinstance(rank, int) and isinstance(due, str) and isinstance(key, str)):
        raise ValueError("not a cursor this API returned")
    return rank, due, key


# --- help-request analytics ----------------------------------------------------------------


def _distribution(values: list[float]) -> Doc:
    """Count, mean, median and 90th percentile (nearest rank) of durations in seconds."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    return {"count": len(ordered), "mean": round(statistics.fmean(ordered), 3),
            "median": round(statistics.median(ordered), 3),
            "p90": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 3)}


def _between(start: str, end: str) -> float:
    return (parse(end) - parse(start)).total_seconds()


def help_request_stats(requests: list[Doc], now: datetime) -> Doc:
    """Counts and timings of help requests. A request breached its SLA when it was still open
    after its due time: not resolved, withdrawn, or closed with its session by then (or, if
    still open, by ``now``). ``closed`` counts those closed because the session ended or the
    student left it: never answered, so not among the resolved."""
    response: list[float] = []
    resolution: list[float] = []
    breached = 0
    for request in requests:
        answered = [request[k] for k in ("acknowledgedAt", "startedAt") if request.get(k)]
        if answered:
            response.append(_between(request["raisedAt"], min(answered)))
        if request.get("resolvedAt"):
            resolution.append(_between(request["raisedAt"], request["resolvedAt"]))
        closed = request.get("resolvedAt") or request.get("cancelledAt") or request.get("closedAt")
        if (parse(closed) if closed else now) > parse(request["slaDueAt"]):
            breached += 1
    statuses = [r["status"] for r in requests]
    return {"raised": len(requests), "resolved": statuses.count("RESOLVED"),
            "cancelled": statuses.count("CANCELLED"), "closed": statuses.count("CLOSED"),
            "open": sum(1 for s in statuses if s in OPEN_HELP_REQUESTS), "slaBreached": breached,
            "responseSeconds": _distribution(response), "resolutionSeconds": _distribution(resolution)}


def _stats_by_priority(requests: list[Doc], now: datetime) -> Doc:
    return {"total": help_request_stats(requests, now),
            "byPriority": {priority.value: help_request_stats(
                [r for r in requests if r["priority"] == priority], now) for priority in HELP_PRIORITIES}}


def help_request_analytics(sessions: list[Doc], names: dict[str, str], start: datetime, end: datetime,
                           now: datetime) -> Doc:
    """Per tutor and per priority, the help requests raised in [start, end) in ``sessions``."""
    low, high = start.astimezone(UTC), end.astimezone(UTC)
    by_tutor: dict[str, list[Doc]] = {}
    for session in sessions:
        requests = by_tutor.setdefault(session["tutorId"], [])
        requests += [request for student in session["students"].values()
                     for request in student["helpRequests"].values()
                     if low <= parse(request["raisedAt"]) < high]
    tutors = [{"tutorId": tutor_id, "tutorName": names.get(tutor_id), **_stats_by_priority(requests, now)}
              for tutor_id, requests in by_tutor.items() if requests]
    tutors.sort(key=lambda t: (t["tutorName"] or "", t["tutorId"]))
    everything = [r for requests in by_tutor.values() for r in requests]
    return {"from": low.isoformat().replace("+00:00", "Z"), "to": high.isoformat().replace("+00:00", "Z"),
            "tutors": tutors, "overall": _stats_by_priority(everything, now)}


# --- repeated absences ---------------------------------------------------------------------

REPEATED_ABSENCES = 2
"""Consecutive ABSENT marks, in a student's latest marked sessions, that raise an alert."""


def absence_streak(student: Doc) -> list[Doc]:
    """The student's latest marked sessions, newest first, as long as each was an absence."""
    marked = sorted((s for s in student["sessions"].values() if s["attendance"]),
                    key=lambda s: (s["startsAt"], s["sessionId"]), reverse=True)
    return list(itertools.takewhile(lambda s: s["attendance"] == "ABSENT", marked))


def repeated_absences(students: dict[str, Doc], names: dict[str, str]) -> list[Doc]:
    """Students absent from at least ``REPEATED_ABSENCES`` of their latest marked sessions in a row."""
    found: list[Doc] = []
    for student_id, student in students.items():
        streak = absence_streak(student)
        if len(streak) >= REPEATED_ABSENCES:
            found.append({"studentId": student_id, "studentName": names.get(student_id),
                          "consecutiveAbsences": len(streak),
                          "sessions": [{key: s[key] for key in ("sessionId", "title", "startsAt")}
                                       for s in streak]})
    found.sort(key=lambda a: (-a["consecutiveAbsences"], a["studentName"] or "", a["studentId"]))
    return found
