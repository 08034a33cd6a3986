"""A student's risk score: the seed's table over what the student's document keeps.

| trigger | points |
|---|---|
| 3+ consecutive absences (the latest marked sessions, newest first, each ABSENT) | +30 |
| each overdue homework (not handed in, past its due time or marked overdue) | +5 |
| average score < 50 % over the last 5 scored exercises (once there are 3) | +20 |
| 3+ consecutive score drops (each of the last 4 scores lower than the one before) | +15 |
| no attendance for 7+ days (since the last session attended, or the first one marked) | +25 |

MEDIUM from 20 points, HIGH from 40. Everything comes from the document (the projector keeps
its sessions, marks, work and homework up to date); what depends on the time of reading (what
is overdue, how long since the student last came) is computed with ``now``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from shared.events import OPEN_HOMEWORK, AttendanceStatus, WorkStatus
from shared.readmodels.documents import (
    AbsentFrom,
    JsonObject,
    OpenHomework,
    SessionTotals,
    Student,
    StudentAlerts,
    StudentSession,
    Work,
)
from shared.readmodels.times import iso, parse

REPEATED_ABSENCES: Final = 2
"""Absences in a row, in a student's latest marked sessions, that raise an alert in My Day and
tell the centre's supervisors (not yet a score: that takes ``ABSENCES_IN_A_ROW``)."""
ABSENCES_IN_A_ROW: Final = 3
ABSENCE_POINTS: Final = 30
OVERDUE_HOMEWORK_POINTS: Final = 5
SCORE_WINDOW: Final = 5
"""The latest scored exercises the average is taken over."""
MIN_SCORED: Final = 3
"""Scored exercises needed before their average counts: one bad quiz is not a pattern."""
LOW_AVERAGE_PERCENT: Final = 50.0
LOW_AVERAGE_POINTS: Final = 20
SCORE_DROPS: Final = 3
SCORE_DROP_POINTS: Final = 15
NO_ATTENDANCE_DAYS: Final = 7
NO_ATTENDANCE_POINTS: Final = 25
MEDIUM_FROM: Final = 20
HIGH_FROM: Final = 40

ATTENDED: Final = frozenset({AttendanceStatus.PRESENT, AttendanceStatus.LATE})
SCORED: Final = frozenset({WorkStatus.AUTO_GRADED, WorkStatus.GRADED})


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class RiskTrigger(StrEnum):
    CONSECUTIVE_ABSENCES = "CONSECUTIVE_ABSENCES"
    OVERDUE_HOMEWORK = "OVERDUE_HOMEWORK"
    LOW_AVERAGE_SCORE = "LOW_AVERAGE_SCORE"
    FALLING_SCORES = "FALLING_SCORES"
    NO_RECENT_ATTENDANCE = "NO_RECENT_ATTENDANCE"


@dataclass(frozen=True)
class RiskReason:
    trigger: RiskTrigger
    points: int
    message: str


@dataclass(frozen=True)
class Risk:
    score: int
    level: RiskLevel
    reasons: tuple[RiskReason, ...]

    def as_json(self) -> JsonObject:
        return {
            "score": self.score,
            "level": self.level.value,
            "reasons": [
                {"trigger": r.trigger.value, "points": r.points, "message": r.message}
                for r in self.reasons
            ],
        }


def level_of(score: int) -> RiskLevel:
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= MEDIUM_FROM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def _newest_marked_first(sessions: Iterable[StudentSession]) -> list[StudentSession]:
    return sorted(
        (s for s in sessions if s.attendance),
        key=lambda s: (s.starts_at, s.session_id),
        reverse=True,
    )


def absence_streak(student: Student) -> list[StudentSession]:
    """The student's latest marked sessions, newest first, as long as each was an absence."""
    marked = _newest_marked_first(student.sessions.values())
    return list(itertools.takewhile(lambda s: s.attendance is AttendanceStatus.ABSENT, marked))


def scores(student: Student) -> list[tuple[str, float]]:
    """Every scored exercise's ``(when it was scored, percent)``, oldest first."""
    scored: list[tuple[str, str, float]] = []
    for session in student.sessions.values():
        for work in session.work.values():
            percent = _percent(work)
            if percent is not None:
                when = work.graded_at or work.submitted_at or work.assigned_at
                scored.append((when, work.work_id, percent))
    scored.sort()
    return [(when, percent) for when, _, percent in scored]


def _percent(work: Work) -> float | None:
    if work.status not in SCORED or work.score is None or work.max_score <= 0:
        return None
    return 100.0 * work.score / work.max_score


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def alert_inputs(student: Student) -> StudentAlerts:
    """What the risk score and the absence alert read of ``student`` that does not depend on
    the time of reading (the ``student_alerts`` document the projection keeps)."""
    marked_overdue = student.overdue_homework or {}
    open_homework = sorted(
        (h for h in student.homework.values() if h.status in OPEN_HOMEWORK),
        key=lambda h: (h.due_at, h.homework_id),
    )
    marked = _newest_marked_first(student.sessions.values())
    attended = [s.starts_at for s in marked if s.attendance in ATTENDED]
    totals = student.totals if isinstance(student.totals, SessionTotals) else None
    if totals and totals.last_attended_at:
        attended.append(totals.last_attended_at)  # over every session, those not kept too
    first_marked = [
        *((totals.first_marked_at,) if totals and totals.first_marked_at else ()),
        *(s.starts_at for s in reversed(marked)),
    ]
    return StudentAlerts(
        student_id=student.student_id,
        centre_id=student.centre_id,
        absences=[
            AbsentFrom(session_id=s.session_id, title=s.title, starts_at=s.starts_at)
            for s in itertools.takewhile(lambda s: s.attendance is AttendanceStatus.ABSENT, marked)
        ],
        percents=[p for _, p in scores(student)],
        open_homework=[
            OpenHomework(
                homework_id=h.homework_id,
                title=h.title,
                due_at=h.due_at,
                marked_overdue=h.homework_id in marked_overdue,
            )
            for h in open_homework
        ],
        since=max(attended) if attended else (min(first_marked) if first_marked else None),
        attended=bool(attended),
    )


def risk_of(student: Student, now: datetime) -> Risk:
    """The student's risk score, level and the reasons for it, at ``now``."""
    return risk_from(alert_inputs(student), now)


def passed(at: str, now: datetime, now_text: str | None = None) -> bool:
    """``now`` is later than ``at`` (a time as documents hold it; ``now_text``: ``iso(now)``,
    if worked out already). Times written as :func:`iso` writes them compare as text; any other
    is parsed."""
    if now_text is None:
        now_text = iso(now)
    if len(at) == len(now_text) and at[-1] == "Z":
        return now_text > at
    return now > parse(at)


def risk_from(alerts: StudentAlerts, now: datetime, now_text: str | None = None) -> Risk:
    """The risk score, level and reasons, at ``now``, of a student's :func:`alert_inputs`
    (``now_text``: ``iso(now)``, if worked out already; else worked out only if there is
    open homework to compare with it)."""
    if now_text is None and alerts.open_homework:
        now_text = iso(now)
    reasons: list[RiskReason] = []
    streak = alerts.absences
    if len(streak) >= ABSENCES_IN_A_ROW:
        reasons.append(
            RiskReason(
                RiskTrigger.CONSECUTIVE_ABSENCES,
                ABSENCE_POINTS,
                f"absent from the last {len(streak)} sessions in a row",
            )
        )
    for homework in alerts.open_homework:
        if homework.marked_overdue or passed(homework.due_at, now, now_text):
            reasons.append(
                RiskReason(
                    RiskTrigger.OVERDUE_HOMEWORK,
                    OVERDUE_HOMEWORK_POINTS,
                    f"homework overdue: {homework.title}",
                )
            )
    percents = alerts.percents
    latest = percents[-SCORE_WINDOW:]
    if len(latest) >= MIN_SCORED:
        average = sum(latest) / len(latest)
        if average < LOW_AVERAGE_PERCENT:
            reasons.append(
                RiskReason(
                    RiskTrigger.LOW_AVERAGE_SCORE,
                    LOW_AVERAGE_POINTS,
                    f"average score {average:.0f}% over the last {len(latest)} exercises",
                )
            )
    drops = 0
    for newer, older in itertools.pairwise(reversed(percents)):
        if newer >= older:  # walking back from the newest: each below the one before it
            break
        drops += 1
    if drops >= SCORE_DROPS:
        reasons.append(
            RiskReason(
                RiskTrigger.FALLING_SCORES,
                SCORE_DROP_POINTS,
                f"scores fell {drops} times in a row",
            )
        )
    since = alerts.since
    if since is not None:
        days = (now - parse(since)) // timedelta(days=1)
        if days >= NO_ATTENDANCE_DAYS:
            reasons.append(
                RiskReason(
                    RiskTrigger.NO_RECENT_ATTENDANCE,
                    NO_ATTENDANCE_POINTS,
                    f"no attendance for {_days(days)}"
                    if alerts.attended
                    else f"not attended any session in {_days(days)}",
                )
            )
    score = sum(r.points for r in reasons)
    return Risk(score=score, level=level_of(score), reasons=tuple(reasons))
