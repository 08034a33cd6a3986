"""Kept aggregates are lent to one command at a time, on PostgreSQL where commands decide on
them without asking the store: a command that comes while another holds the aggregate reads
it from the store, the two still conflict as two processes would, and nobody's update is lost.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from services.command.application import TutoringCentres
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.sessions import EnrolStudent, StartSession
from services.command.domain.aggregate import DomainError
from services.command.domain.seat import Seat, seat_id
from services.command.domain.session import Session
from services.command.unit_of_work import (
    CommandResult,
    ConcurrentUpdate,
    Decision,
    UnitOfWork,
    execute,
    load,
)
from shared.eventstore import EventStoreSettings
from shared.eventstore.cache import Snapshots, StaleRate
from shared.settings import load as load_settings
from tests.builders import plan, register_centre, session_id
from tests.support.servers import PostgresServer
from tests.unit.test_aggregate_cache import STEPS, assert_kept_as_stored, play

STUDENTS = ("ann", "ben", "cal", "dee", "eve", "fay")


@pytest.fixture
def centres(pg: PostgresServer) -> Iterator[TutoringCentres]:
    store = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    yield store
    store.close()


def lent(centres: TutoringCentres, aggregate_id: UUID) -> bool:
    assert centres.aggregates is not None
    entry = centres.aggregates._entries.get(aggregate_id)
    return entry is not None and entry.aggregate is None


def reads_from_the_store(monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The aggregates read from the store from now on, in order."""
    read: list[UUID] = []
    original = Snapshots.with_history

    def reading(self: Snapshots, aggregate_id: UUID, *args: Any) -> Any:
        read.append(aggregate_id)
        return original(self, aggregate_id, *args)

    monkeypatch.setattr(Snapshots, "with_history", reading)
    return read


def test_a_command_on_an_aggregate_another_command_holds_reads_it_and_both_are_stored(
    centres: TutoringCentres,
) -> None:
    centre = register_centre(centres, "alpha")
    tutor = centre["tutor"]
    session = session_id(centres.handle(tutor, plan()).body)
    enrol = EnrolStudent(session_id=session, student_id=centre["ann"].user_id)
    centres.handle(tutor, enrol)  # the session is kept at its new version
    holding, go_on = threading.Event(), threading.Event()
    decided: list[bool] = []

    def slow_enrolment(uow: UnitOfWork) -> Decision:
        state = uow.get(Session, session)
        decided.append(bool(uow.trusted))
        if len(decided) == 1:
            holding.set()
            assert go_on.wait(10)
        state.enrol(centre["ben"].user_id, by=tutor)
        return Decision(201, {})

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(execute, centres, centres.directory, tutor, slow_enrolment)
        assert holding.wait(10)
        assert lent(centres, session), "the kept session is the slow command's alone"
        cal = EnrolStudent(session_id=session, student_id=centre["cal"].user_id)
        assert centres.handle(tutor, cal).status_code == 201  # read from the store
        assert not lent(centres, session), "given back at its new version"
        go_on.set()
        answer: CommandResult = slow.result(timeout=30)
    assert answer.status_code == 201
    assert decided == [True, False], "refused at its commit, decided again on the stored state"
    assert_kept_as_stored(centres)
    state = load(centres, Session, session)
    assert set(state.roster) == {centre[s].user_id for s in ("ann", "ben", "cal")}
    assert state.version == 4


def test_concurrent_enrolments_into_one_session_lose_nothing(centres: TutoringCentres) -> None:
    centre = register_centre(centres, "alpha")
    tutor = centre["tutor"]
    session = session_id(centres.handle(tutor, plan(capacity=len(STUDENTS))).body)

    def enrol(students: tuple[str, ...]) -> None:
        for student in students:
            command = EnrolStudent(session_id=session, student_id=centre[student].user_id)
            while True:
                try:
                    assert centres.handle(tutor, command).status_code == 201
                    break
                except ConcurrentUpdate:  # refused whole: the client tries again
                    continue

    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(enrol, STUDENTS[i::3]) for i in range(3)]:
            done.result(timeout=60)
    assert_kept_as_stored(centres)
    state = load(centres, Session, session)
    assert set(state.roster) == {centre[s].user_id for s in STUDENTS}
    assert state.version == 1 + len(STUDENTS)


def test_a_seat_this_process_knows_nothing_of_is_presumed_new_without_reading_the_store(
    centres: TutoringCentres, monkeypatch: pytest.MonkeyPatch
) -> None:
    centre = register_centre(centres, "alpha")
    tutor, ann = centre["tutor"], centre["ann"]
    session = session_id(centres.handle(tutor, plan()).body)
    centres.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
    centres.handle(tutor, StartSession(session_id=session))
    read = reads_from_the_store(monkeypatch)
    answer = centres.handle(ann, RaiseHelpRequest(session_id=session))
    assert answer.status_code == 201
    assert seat_id(session, ann.user_id) not in read, "the new seat was not asked for"
    assert_kept_as_stored(centres)
    seat = load(centres, Seat, seat_id(session, ann.user_id))
    assert seat.version == 1 and len(seat.help_requests) == 1


def test_a_seat_presumed_new_that_another_process_made_is_decided_again_on_it(
    pg: PostgresServer,
) -> None:
    """Ann's second request while her first is open is refused, whichever process took the
    first: the second process presumes her seat new, its commit finds it stored, and the
    command is decided again on the stored seat. The wrong guess counts against guessing, not
    against the kept copies."""
    first, second = (TutoringCentres(load_settings(EventStoreSettings, pg.env())) for _ in "ab")
    try:
        centre = register_centre(first, "alpha")
        tutor, ann = centre["tutor"], centre["ann"]
        session = session_id(first.handle(tutor, plan()).body)
        first.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
        first.handle(tutor, StartSession(session_id=session))
        assert first.handle(ann, RaiseHelpRequest(session_id=session)).status_code == 201
        with pytest.raises(DomainError) as refused:
            second.handle(ann, RaiseHelpRequest(session_id=session))
        with pytest.raises(type(refused.value)):
            first.handle(ann, RaiseHelpRequest(session_id=session))  # the same answer
        kept = second.aggregates
        assert kept is not None and kept.presumed.rate(Seat) > 0 and kept.stale.rate == 0
        seat = load(second, Seat, seat_id(session, ann.user_id))
        assert seat.version == 1 and len(seat.help_requests) == 1
    finally:
        first.close()
        second.close()


def test_commands_refused_or_failed_on_kept_copies_leave_nothing_of_them_kept(
    centres: TutoringCentres,
) -> None:
    """The property test of ``tests/unit/test_aggregate_cache.py`` on PostgreSQL, where commands
    take kept copies without asking the store: twelve sequences of commands that succeed, are
    refused, or fail after changing the session they borrowed."""
    centre = register_centre(centres, "alpha")
    chance = random.Random(12)
    assert centres.aggregates is not None
    for _ in range(12):
        # The failures count as stale copies and would soon stop them being taken unasked:
        # each sequence starts with a clean record, so every one runs on kept copies.
        centres.aggregates.stale = StaleRate()
        play(
            centres,
            centre,
            [(chance.choice(STEPS), chance.choice(("ann", "ben", "cal"))) for _ in range(10)],
        )
    assert centres.aggregates.trusted > 50, "kept copies were taken unasked"
