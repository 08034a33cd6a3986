"""Which sessions My Day lists as today's: those that run at some time of the day where the
centre is, including one that began the evening before and runs past midnight, and any session
still live; not one that ended before the day began or begins after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.events import SessionMode, SessionStatus
from shared.readmodels.documents import Tutor, TutorSession
from shared.readmodels.times import iso
from shared.readmodels.views.my_day import my_day

SYDNEY = "Australia/Sydney"
NOW = datetime(2026, 12, 6, 0, 9, tzinfo=ZoneInfo(SYDNEY))  # nine minutes past midnight


def _session(name: str, starts: datetime, minutes: int, status: SessionStatus) -> TutorSession:
    return TutorSession(
        session_id=name,
        title=name,
        status=status,
        starts_at=iso(starts),
        ends_at=iso(starts + timedelta(minutes=minutes)),
        time_zone=SYDNEY,
        mode=SessionMode.ONLINE,
    )


def test_my_day_lists_what_runs_today_where_the_centre_is() -> None:
    midnight = NOW.replace(hour=0, minute=0)
    sessions = [
        _session(
            "live since before midnight", midnight - timedelta(minutes=10), 60, SessionStatus.LIVE
        ),
        _session("ran into today", midnight - timedelta(minutes=30), 40, SessionStatus.COMPLETED),
        _session("this morning", midnight + timedelta(hours=9), 60, SessionStatus.SCHEDULED),
        _session(
            "last thing tonight",
            midnight + timedelta(hours=23, minutes=30),
            60,
            SessionStatus.SCHEDULED,
        ),
        _session("ended at midnight", midnight - timedelta(hours=1), 60, SessionStatus.COMPLETED),
        _session("yesterday evening", midnight - timedelta(hours=3), 60, SessionStatus.COMPLETED),
        _session("tomorrow", midnight + timedelta(days=1), 60, SessionStatus.SCHEDULED),
        _session("left live days ago", midnight - timedelta(days=3), 60, SessionStatus.LIVE),
    ]
    tutor = Tutor(tutor_id="t", centre_id="alpha", sessions={s.session_id: s for s in sessions})

    day = my_day(tutor, SYDNEY, {}, NOW.astimezone(UTC))

    assert day["date"] == "2026-12-06"
    assert [s["title"] for s in day["sessions"]] == [
        "left live days ago",
        "ran into today",
        "live since before midnight",
        "this morning",
        "last thing tonight",
    ]
    assert day["next"]["title"] == "left live days ago"  # a live one first: end it, or teach
