"""The demo centre that ``make run`` seeds plays the README's tour cleanly whatever the hour:
John is free from an hour after the seed, and the demo's overdue catch-up is overdue."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.command.application import TutoringCentres
from services.command.commands.sessions import ScheduleSession
from services.command.seed import TIME_ZONE, actor, seed
from shared.events import CatchUpAssigned, SessionMode, decode
from shared.eventstore import EventStoreSettings
from shared.settings import load

SYDNEY = ZoneInfo(TIME_ZONE)


@pytest.mark.parametrize("hour", [0, 9, 10, 13, 15, 23])
def test_the_tour_runs_clean_whenever_the_demo_was_seeded(tmp_path: Path, hour: int) -> None:
    now = datetime.now(SYDNEY).replace(hour=hour, minute=50, second=0, microsecond=0)
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    try:
        seed(centres, today=now.date(), live_since=now - timedelta(minutes=10))
        tour = centres.handle(
            actor("john"),
            ScheduleSession(
                title="Fractions clinic",
                starts_at=now + timedelta(hours=1),
                ends_at=now + timedelta(hours=2),
                mode=SessionMode.ONLINE,
                meeting_link="https://meet.example.org/fractions",
            ),
        )
        assert tour.body["warnings"] == []
        stored = [decode(n.state) for n in centres.recorder.select_notifications(1, 10_000)]
    finally:
        centres.close()
    catch_ups = [e for e in stored if isinstance(e, CatchUpAssigned)]
    overdue = [c for c in catch_ups if c.due_at < now]
    assert [c.reason for c in overdue] == ["absent from Getting Started with Programming"]
