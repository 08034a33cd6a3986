"""Times survive the trip through events and read models: written with four-digit years, parsed
back the same. A store that already holds a year the domain now refuses (a session typed in
the year 0202, another in 9999, from before the rule) still projects, so it can be recovered
without losing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared import events
from shared.events import SessionMode, SessionScheduled, SessionStarted, StudentEnrolled
from shared.readmodels import access, views
from shared.readmodels.projector import apply_all
from shared.readmodels.times import iso as _iso
from shared.tenancy import Actor, Role
from tests.readside import read_store

TUTOR = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")
ADMIN = Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id="alpha")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2030, 4, 1, 16, 0, tzinfo=timezone(timedelta(hours=14))),
        datetime(202, 12, 2, 11, tzinfo=UTC),
        datetime(9999, 12, 30, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),
    ],
)
def test_a_projected_time_has_a_four_digit_year_and_parses_back(moment: datetime) -> None:
    written = _iso(moment)
    assert len(written) == len("2030-04-01T06:00:00.000000Z") and written.endswith("Z")
    assert views.parse(written) == moment
    decoded = events.decode(events.encode(_scheduled(moment)))
    assert isinstance(decoded, SessionScheduled) and decoded.starts_at == moment


def test_a_time_utc_cannot_hold_is_written_as_the_nearest_it_can() -> None:
    assert (
        _iso(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
        == "0001-01-01T00:00:00.000000Z"
    )
    assert _iso(datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=2)))) == (
        "9999-12-31T23:59:59.999999Z"
    )


def _scheduled(
    starts: datetime, version: int = 1, session_id: UUID | None = None
) -> SessionScheduled:
    session_id = session_id or uuid4()
    return SessionScheduled(
        centre_id="alpha",
        aggregate_id=session_id,
        aggregate_version=version,
        occurred_at=datetime.now(UTC),
        actor_id=TUTOR.user_id,
        actor_role=Role.TEACHER,
        session_id=session_id,
        title="Typed in a hurry",
        tutor_id=TUTOR.user_id,
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        time_zone="Australia/Sydney",
        mode=SessionMode.ONLINE,
        meeting_link="https://meet.example.org/a",
    )


def test_sessions_stored_before_the_time_window_was_enforced_still_project(tmp_path: Path) -> None:
    history: list[events.Event] = []
    for year in (202, 9999):
        scheduled = _scheduled(datetime(year, 12, 2, 11, tzinfo=UTC))
        envelope: dict[str, Any] = {
            "centre_id": "alpha",
            "aggregate_id": scheduled.session_id,
            "occurred_at": datetime.now(UTC),
            "actor_id": TUTOR.user_id,
            "actor_role": Role.TEACHER,
            "session_id": scheduled.session_id,
        }
        history += [
            scheduled,
            StudentEnrolled(**envelope, aggregate_version=2, student_id=uuid4()),
            SessionStarted(**envelope, aggregate_version=3),
        ]
    store = read_store(tmp_path)
    apply_all(store, [(events.decode(events.encode(e)), n) for n, e in enumerate(history, start=1)])
    now = datetime.now(UTC)
    for event in history[::3]:
        session_id = event.aggregate_id
        centre_view = access.control_center(store, ADMIN, session_id, now).data
        assert views.parse(centre_view["startsAt"]).year in (202, 9999)
    tutor = store.get("tutor", str(TUTOR.user_id))
    assert tutor is not None and len(tutor.doc["sessions"]) == 2  # LIVE sessions are kept
    access.my_day(store, TUTOR, None, now)
