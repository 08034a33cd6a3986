"""Aggregates a process knows nothing of are presumed new kind by kind, on PostgreSQL.

A command service that just started knows none of the tutors' timetable weeks, which mostly
exist, while a student's seat in a session is mostly new. Its wrong guesses about weeks stop it
presuming weeks new, not seats: a help request still stores its new seat without reading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from services.command.application import TutoringCentres
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.sessions import EnrolStudent, StartSession
from services.command.domain.seat import Seat, seat_id
from services.command.domain.timetable import TimetableWeek
from services.command.unit_of_work import load
from shared.eventstore import EventStoreSettings
from shared.eventstore.cache import StaleRate
from shared.settings import load as load_settings
from tests.builders import plan, register_centre, session_id
from tests.integration.test_aggregate_lending import reads_from_the_store
from tests.support.servers import PostgresServer

WEEKS = StaleRate.FIRST
STUDENTS = ("ann", "ben", "cal", "dee", "eve")


@pytest.fixture
def two(pg: PostgresServer) -> Iterator[tuple[TutoringCentres, TutoringCentres]]:
    first, second = (TutoringCentres(load_settings(EventStoreSettings, pg.env())) for _ in "ab")
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The aggregates read from the store, in order."""
    return reads_from_the_store(monkeypatch)


def test_weeks_guessed_wrong_do_not_stop_a_new_process_presuming_seats_new(
    two: tuple[TutoringCentres, TutoringCentres], reads: list[UUID]
) -> None:
    first, second = two
    centre = register_centre(first, "alpha")
    tutor, ann = centre["tutor"], centre["ann"]
    for week in range(WEEKS):  # the tutor's weeks, stored by the process that ran before
        first.handle(tutor, plan(hours_from_now=24 * 7 * week + 1))
    session = session_id(first.handle(tutor, plan(hours_from_now=0.5)).body)
    first.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
    first.handle(tutor, StartSession(session_id=session))

    for week in range(WEEKS):  # each week presumed new, found stored, decided again on it
        assert second.handle(tutor, plan(hours_from_now=24 * 7 * week + 2)).status_code == 201
    kept = second.aggregates
    assert kept is not None
    assert kept.presumed.rate(TimetableWeek) > StaleRate.MOST
    assert not kept.presumed.trust(TimetableWeek), "weeks are read from now on"

    reads.clear()
    assert second.handle(ann, RaiseHelpRequest(session_id=session)).status_code == 201
    assert seat_id(session, ann.user_id) not in reads, "the new seat was presumed new"
    seat = load(second, Seat, seat_id(session, ann.user_id))
    assert seat.version == 1 and len(seat.help_requests) == 1


def test_a_kind_read_from_the_store_learns_that_its_aggregates_are_new_again(
    two: tuple[TutoringCentres, TutoringCentres], reads: list[UUID]
) -> None:
    """While a kind is not presumed new, each read that finds no history counts as a guess
    that would have been right, so presuming resumes without waiting for probes."""
    first, second = two
    centre = register_centre(first, "alpha")
    tutor = centre["tutor"]
    kept = second.aggregates
    assert kept is not None
    for _ in range(StaleRate.FIRST):  # as if every seat it met so far had existed
        kept.presumed.record(Seat, stale=True)
    assert not kept.presumed.trust(Seat)
    session = session_id(first.handle(tutor, plan()).body)
    for name in STUDENTS:
        first.handle(tutor, EnrolStudent(session_id=session, student_id=centre[name].user_id))
    first.handle(tutor, StartSession(session_id=session))
    before = kept.presumed.rate(Seat)
    reads.clear()
    for name in STUDENTS:
        assert second.handle(centre[name], RaiseHelpRequest(session_id=session)).status_code == 201
    seats = {seat_id(session, centre[name].user_id) for name in STUDENTS}
    assert seats <= set(reads), "each seat was read while seats were not presumed new"
    assert kept.presumed.rate(Seat) < before
