"""My Day: a tutor's sessions of today, help requests, catch-ups, work to grade and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events import (
    HELP_PRIORITY_RANK,
    OPEN_CATCH_UPS,
    HomeworkStatus,
    SessionStatus,
)
from shared.readmodels.documents import JsonObject, Student, StudentAlerts, Tutor, as_json
from shared.readmodels.times import iso, parse
from shared.readmodels.views.common import Names, OrderName, as_stored, help_view, overdue
from shared.readmodels.views.risk import REPEATED_ABSENCES, RiskLevel, alert_inputs, risk_from


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` where ``zone`` is."""
    return datetime.combine(day, time.min, tzinfo=zone)


def _within(starts_at: str, ends_at: str, start: str, end: str) -> bool:
    """Whether a session from ``starts_at`` to ``ends_at`` runs at some time of [start, end)."""
    if len(starts_at) == len(ends_at) == len(start):
        return starts_at < end and ends_at > start
    return parse(starts_at) < parse(end) and parse(ends_at) > parse(start)


def my_day(
    tutor: Tutor,
    time_zone: str,
    names: Names,
    now: datetime,
    students: Mapping[str, Student | StudentAlerts] | None = None,
    order_name: OrderName = as_stored,
) -> JsonObject:
    """``students``: what the absence and risk alerts read of the students of the tutor's
    sessions (their ``student_alerts``, or a document of theirs to work it out from).
    ``order_name``: how alerts that tie are ordered by the student's name."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    # Today's sessions: those that run at some time of today where the centre is (one that
    # started yesterday evening and runs past midnight included), and any still live. Times
    # compare as text, as documents write them (an odd length is parsed).
    start, end = iso(_midnight(today, zone)), iso(_midnight(today + timedelta(days=1), zone))
    todays = sorted(
        (
            s
            for s in tutor.sessions.values()
            if s.status is SessionStatus.LIVE or _within(s.starts_at, s.ends_at, start, end)
        ),
        key=lambda s: (s.starts_at, s.session_id),
    )
    sessions = [{**as_json(s), "studentNames": [names.get(i) for i in s.students]} for s in todays]
    upcoming = [s for s in sessions if s["status"] == SessionStatus.LIVE] or [
        s for s in sessions if s["status"] == SessionStatus.SCHEDULED and parse(s["endsAt"]) > now
    ]
    help_requests = sorted(
        (
            {**help_view(h, now), "studentName": names.get(h.student_id)}
            for h in tutor.open_help.values()
        ),
        # Within a priority, those escalated to the supervisors (past their SLA) first.
        key=lambda h: (
            HELP_PRIORITY_RANK.get(h["priority"], 9),
            "escalatedAt" not in h,
            h["raisedAt"],
        ),
    )
    catch_ups = [
        {**as_json(c), "studentName": names.get(c.student_id), "overdue": overdue(c, now)}
        for c in tutor.catch_ups.values()
        if c.status in OPEN_CATCH_UPS
    ]
    catch_ups.sort(key=lambda c: (c["dueAt"], c["catchUpId"]))
    to_grade = [
        {**as_json(w), "kind": "EXERCISE", "studentName": names.get(w.student_id)}
        for w in tutor.to_grade.values()
    ]
    to_grade += [
        {**as_json(h), "kind": "HOMEWORK", "studentName": names.get(h.student_id)}
        for h in tutor.homework.values()
        if h.status is HomeworkStatus.SUBMITTED
    ]
    to_grade.sort(key=lambda w: (w["submittedAt"], w.get("workId") or w.get("homeworkId")))
    paper = sorted(
        (
            {**as_json(p), "studentName": names.get(p.student_id)}
            for p in (tutor.paper or {}).values()
        ),
        key=lambda p: (p["routedAt"], p["uploadId"]),
    )
    alerts = [
        {
            "type": "OVERLAPPING_SESSIONS",
            "sessionIds": [a["sessionId"], b["sessionId"]],
            "message": f"{a['title']} overlaps {b['title']}",
        }
        for i, a in enumerate(sessions)
        for b in sessions[i + 1 :]
        if a["status"] != SessionStatus.CANCELLED
        and b["status"] != SessionStatus.CANCELLED
        and a["startsAt"] < b["endsAt"]
        and b["startsAt"] < a["endsAt"]
    ]
    alerts += [
        {
            "type": "HELP_SLA_BREACHED",
            "helpRequestId": h["helpRequestId"],
            "sessionId": h["sessionId"],
            "message": f"{h['studentName'] or 'a student'} has waited "
            f"{h['waitingSeconds'] // 60} min ({h['priority']})",
        }
        for h in help_requests
        if h["slaBreached"]
    ]
    inputs = _alerts_of(students or {})
    absences = repeated_absences(inputs, names, order_name)
    alerts += [
        {
            "type": "REPEATED_ABSENCES",
            "studentId": a["studentId"],
            "sessionIds": [s["sessionId"] for s in a["sessions"]],
            "message": f"{a['studentName'] or 'a student'} was absent from their last "
            f"{a['consecutiveAbsences']} sessions",
        }
        for a in absences
    ]
    alerts += at_risk(inputs, names, now, order_name)
    return {
        "tutorId": tutor.tutor_id,
        "tutorName": names.get(tutor.tutor_id),
        "date": today.isoformat(),
        "timeZone": time_zone,
        "sessions": sessions,
        "next": upcoming[0] if upcoming else None,
        "openHelpRequests": help_requests,
        "catchUps": {
            "pending": [c for c in catch_ups if not c["overdue"]],
            "overdue": [c for c in catch_ups if c["overdue"]],
        },
        "toGrade": to_grade,
        "paperToMark": paper,
        "alerts": alerts,
        "repeatedAbsences": absences,
        "stats": {
            "sessionsToday": len(sessions),
            "toGrade": len(to_grade),
            "paperToMark": len(paper),
            "completed": sum(1 for s in todays if s.status is SessionStatus.COMPLETED),
            "openHelpRequests": len(help_requests),
            "overdueCatchUps": sum(1 for c in catch_ups if c["overdue"]),
            "repeatedAbsences": len(absences),
        },
    }


def _alerts_of(students: Mapping[str, Student | StudentAlerts]) -> dict[str, StudentAlerts]:
    return {
        key: doc if isinstance(doc, StudentAlerts) else alert_inputs(doc)
        for key, doc in students.items()
    }


def repeated_absences(
    students: Mapping[str, Student | StudentAlerts],
    names: Names,
    order_name: OrderName = as_stored,
) -> list[JsonObject]:
    """Students absent from at least ``REPEATED_ABSENCES`` of their latest marked sessions in
    a row."""
    found: list[JsonObject] = []
    for student_id, alerts in _alerts_of(students).items():
        streak = alerts.absences
        if len(streak) >= REPEATED_ABSENCES:
            found.append(
                {
                    "studentId": student_id,
                    "studentName": names.get(student_id),
                    "consecutiveAbsences": len(streak),
                    "sessions": [
                        {"sessionId": s.session_id, "title": s.title, "startsAt": s.starts_at}
                        for s in streak
                    ],
                }
            )
    found.sort(
        key=lambda a: (-a["consecutiveAbsences"], order_name(a["studentName"]), a["studentId"])
    )
    return found


def at_risk(
    students: Mapping[str, Student | StudentAlerts],
    names: Names,
    now: datetime,
    order_name: OrderName = as_stored,
) -> list[JsonObject]:
    """A ``STUDENT_AT_RISK`` alert for each student whose risk is MEDIUM or HIGH, the highest
    score first."""
    alerts: list[JsonObject] = []
    now_text = iso(now)
    for student_id, inputs in _alerts_of(students).items():
        risk = risk_from(inputs, now, now_text)
        if risk.level is RiskLevel.LOW:
            continue
        name = names.get(student_id)
        alerts.append(
            {
                "type": "STUDENT_AT_RISK",
                "studentId": student_id,
                "studentName": name,
                "risk": risk.as_json(),
                "message": f"{name or 'a student'} is at {risk.level.value} risk "
                f"({risk.score} points): " + "; ".join(r.message for r in risk.reasons),
            }
        )
    alerts.sort(key=lambda a: (-a["risk"]["score"], order_name(a["studentName"]), a["studentId"]))
    return alerts
