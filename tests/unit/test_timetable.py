from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TypedDict
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.command.domain.aggregate import RuleViolated
from services.command.domain.session import Session
from services.command.domain.timetable import (
    TimetableWeek,
    TutorTimetable,
    timetable_week_id,
    week_of,
    weeks_touched,
)
from shared.events import (
    Event,
    TimetableSessionBooked,
    TimetableSessionMoved,
    TimetableSessionReleased,
)
from tests.unit.test_session import START, TUTOR, scheduled

MONDAY = date(2026, 11, 23)


def timetable_for(*sessions: Session, tutor_id: UUID | None = None) -> TutorTimetable:
    weeks = TutorTimetable.weeks_needed(*((s.starts_at, s.ends_at) for s in sessions))
    return TutorTimetable(
        tutor_id or TUTOR.user_id,
        [TimetableWeek.of(TUTOR.user_id, week, "alpha") for week in weeks],
    )


class Times(TypedDict):
    starts_at: datetime
    ends_at: datetime


def at(hours: float, length: float = 1) -> Times:
    starts = START + timedelta(hours=hours)
    return {"starts_at": starts, "ends_at": starts + timedelta(hours=length)}


def test_weeks_start_on_monday_in_utc_and_a_session_ending_at_midnight_stays_in_its_week() -> None:
    assert week_of(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) == MONDAY
    sunday_evening = datetime(2026, 11, 29, 22, tzinfo=UTC)
    assert weeks_touched(sunday_evening, sunday_evening + timedelta(hours=2)) == [MONDAY]
    assert weeks_touched(sunday_evening, sunday_evening + timedelta(hours=3)) == [
        MONDAY,
        MONDAY + timedelta(days=7),
    ]
    assert timetable_week_id(TUTOR.user_id, MONDAY) == timetable_week_id(TUTOR.user_id, MONDAY)
    assert timetable_week_id(TUTOR.user_id, MONDAY) != timetable_week_id(uuid4(), MONDAY)


def test_booking_warns_of_overlaps_but_never_refuses() -> None:
    first, second, later = scheduled(**at(0)), scheduled(**at(0.5)), scheduled(**at(1))
    timetable = timetable_for(first, second, later)
    assert timetable.book(first, by=TUTOR) == []
    overlaps = timetable.book(second, by=TUTOR)
    assert [(o.session_id, o.other.session_id, o.other.title) for o in overlaps] == [
        (second.id, first.id, "Algebra")
    ]
    # ends exactly when the first ends: touching is not overlapping the first, but is the second
    assert [o.other.session_id for o in timetable.book(later, by=TUTOR)] == [second.id]
    (week,) = timetable.weeks
    assert set(week.bookings) == {first.id, second.id, later.id}
    assert [type(e) for e in week.collect_events()] == [TimetableSessionBooked] * 3


def test_moving_follows_the_session_across_weeks_and_cancelling_releases_it() -> None:
    session, other = scheduled(**at(0)), scheduled(**at(7 * 24, 2))
    timetable = timetable_for(session, other)
    timetable.book(session, by=TUTOR)
    timetable.book(other, by=TUTOR)
    for week in timetable.weeks:
        week.collect_events()
    session.reschedule(by=TUTOR, **at(7 * 24 + 1))
    assert [o.other.session_id for o in timetable.book(session, by=TUTOR)] == [other.id]
    this_week, next_week = timetable.weeks
    released = this_week.collect_events()
    assert [type(e) for e in released] == [TimetableSessionReleased]
    assert isinstance(released[0], TimetableSessionReleased)
    assert released[0].reason == "moved to another week"
    assert session.id not in this_week.bookings and session.id in next_week.bookings
    session.reschedule(by=TUTOR, **at(7 * 24 + 3))
    assert timetable.book(session, by=TUTOR) == []
    assert [type(e) for e in next_week.collect_events()] == [
        TimetableSessionBooked,
        TimetableSessionMoved,
    ]
    session.cancel(by=TUTOR, reason="ill")
    timetable.release(session, by=TUTOR)
    assert session.id not in next_week.bookings and other.id in next_week.bookings
    assert timetable.overlaps(scheduled(**at(7 * 24 + 1))) and not timetable.overlaps(
        scheduled(**at(2))
    )


def test_booking_the_same_times_again_records_nothing_and_others_tutors_are_refused() -> None:
    session = scheduled(**at(0))
    timetable = timetable_for(session)
    timetable.book(session, by=TUTOR)
    (week,) = timetable.weeks
    week.collect_events()
    assert timetable.book(session, by=TUTOR) == [] and not week.has_changes
    with pytest.raises(RuleViolated):
        timetable_for(session, tutor_id=uuid4()).book(session, by=TUTOR)
    with pytest.raises(RuleViolated):
        week.release(uuid4(), by=TUTOR, reason="cancelled")


@given(st.lists(st.tuples(st.integers(0, 24 * 20), st.integers(1, 12)), min_size=1, max_size=8))
def test_overlaps_are_exactly_the_intersecting_sessions_and_weeks_rebuild_from_events(
    slots: list[tuple[int, int]],
) -> None:
    sessions = [scheduled(**at(start, length)) for start, length in slots]
    timetable = timetable_for(*sessions)
    for index, session in enumerate(sessions):
        expected = {
            s.id
            for s in sessions[:index]
            if s.starts_at < session.ends_at and session.starts_at < s.ends_at
        }
        assert {o.other.session_id for o in timetable.book(session, by=TUTOR)} == expected
    for week in timetable.weeks:
        history: list[Event] = week.collect_events()
        rebuilt = TimetableWeek.project(None, history)
        assert rebuilt is not None and rebuilt.id == week.id
        assert (rebuilt.bookings, rebuilt.week_of) == (week.bookings, week.week_of)
        assert rebuilt.version == week.version
