"""Kept aggregates are lent to one command at a time, on PostgreSQL where commands decide on
them without asking the store: a command that comes while another holds the aggregate reads
it from the store, the two still conflict as two processes would, and nobody's update is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from services.command.application import TutoringCentres
from services.command.commands.sessions import EnrolStudent
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
from shared.settings import load as load_settings
from tests.builders import plan, register_centre, session_id
from tests.support.servers import PostgresServer
from tests.unit.test_aggregate_cache import assert_kept_as_stored

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
