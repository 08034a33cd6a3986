"""Group commit on PostgreSQL: concurrent commands' events in one transaction, each command
still all or nothing, a conflict refusing only the command that conflicts.

A group is gathered deterministically: the test holds the writer's lock while the commands
queue, then lets them go, so every queued command is stored by the same transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from services.command.application import TutoringCentres
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.sessions import EndSession, EnrolStudent, StartSession
from services.command.domain.aggregate import DomainError, RuleViolated
from services.command.domain.session import Session
from services.command.unit_of_work import load
from shared.eventstore import EventStore, EventStoreSettings
from shared.eventstore.group_commit import GroupCommit, StaleRead
from shared.settings import load as load_settings
from tests.builders import plan, register_centre, session_id
from tests.support.servers import PostgresServer

T = TypeVar("T")


@pytest.fixture
def store(pg: PostgresServer) -> Iterator[EventStore]:
    events = EventStore(load_settings(EventStoreSettings, pg.env()))
    yield events
    events.close()


def group_of(store: EventStore) -> GroupCommit:
    assert store.group_commit is not None, "PostgreSQL stores commit in groups"
    return store.group_commit


def wait_until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


def in_one_group(group: GroupCommit, calls: list[Callable[[], T]]) -> list[Future[T]]:
    """Run ``calls`` concurrently, queued in this order, and stored by one transaction."""
    pool = ThreadPoolExecutor(len(calls))
    futures: list[Future[T]] = []
    with group.writing:
        for number, call in enumerate(calls, start=1):
            futures.append(pool.submit(call))
            wait_until(lambda n=number: group.queued() == n, f"{number} commands queued")  # type: ignore[misc]
    pool.shutdown(wait=True)
    return futures


def event(aggregate: UUID, version: int = 1, topic: str = "Recorded") -> StoredEvent:
    return StoredEvent(
        originator_id=aggregate, originator_version=version, topic=topic, state=b"{}"
    )


def stored(store: EventStore) -> list[tuple[int, UUID | str, int]]:
    return [
        (n.id, n.originator_id, n.originator_version)
        for n in store.recorder.select_notifications(1, 1000)
    ]


def outcome(future: Future[Any]) -> Any:
    error = future.exception()
    return error if error is not None else future.result()


def test_commands_queued_together_are_stored_by_one_transaction_in_their_order(
    store: EventStore,
) -> None:
    group = group_of(store)
    a, b, c = uuid4(), uuid4(), uuid4()
    futures = in_one_group(
        group,
        [
            lambda: group.insert([event(a, 1), event(a, 2)]),
            lambda: group.insert([event(b, 1)]),
            lambda: group.insert([event(c, 1), event(c, 2)]),
        ],
    )
    ids = [f.result() for f in futures]
    assert group.groups == 1 and group.fallbacks == 0
    assert [len(i) for i in ids] == [2, 1, 2]
    assert ids[0] + ids[1] + ids[2] == sorted(ids[0] + ids[1] + ids[2])
    assert [(o, v) for _, o, v in stored(store)] == [(a, 1), (a, 2), (b, 1), (c, 1), (c, 2)]
    assert [n for n, _, _ in stored(store)] == ids[0] + ids[1] + ids[2]


def test_a_command_that_conflicts_is_refused_whole_and_the_rest_of_its_group_is_stored(
    store: EventStore,
) -> None:
    group = group_of(store)
    taken = uuid4()
    group.insert([event(taken, 1)])  # someone wrote this aggregate first
    first, fresh, last = uuid4(), uuid4(), uuid4()
    futures = in_one_group(
        group,
        [
            lambda: group.insert([event(first, 1)]),
            # all or nothing: its fresh aggregate must not be stored without the other one
            lambda: group.insert([event(fresh, 1), event(taken, 1)]),
            lambda: group.insert([event(last, 1), event(last, 2)]),
        ],
    )
    first_ids, refused, last_ids = (outcome(f) for f in futures)
    assert isinstance(refused, IntegrityError)
    assert isinstance(first_ids, list) and isinstance(last_ids, list)
    assert group.fallbacks == 1
    assert first_ids[0] < last_ids[0] < last_ids[1]
    assert [(o, v) for _, o, v in stored(store)] == [(taken, 1), (first, 1), (last, 1), (last, 2)]


def test_two_commands_of_one_group_on_the_same_aggregate_one_wins_one_is_decided_again(
    pg: PostgresServer,
) -> None:
    """Two enrolments into one session in the same group: both write the session at the same
    version; the first is stored, the second is refused by the group, decided again on the
    session with the first student in it, and stored: nobody's enrolment is lost."""
    centres = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    try:
        centre = register_centre(centres, "alpha")
        session = session_id(centres.handle(centre["tutor"], plan()).body)
        version = load(centres, Session, session).version
        group = group_of(centres)

        def enrol(student: str) -> Callable[[], Any]:
            return lambda: centres.handle(
                centre["tutor"],
                EnrolStudent(session_id=session, student_id=centre[student].user_id),
            )

        futures = in_one_group(group, [enrol("ann"), enrol("ben")])
        answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [201, 201]
        assert group.fallbacks == 1, "the two met in one group and conflicted"
        enrolled = load(centres, Session, session)
        assert set(enrolled.roster) == {centre["ann"].user_id, centre["ben"].user_id}
        assert enrolled.version == version + 2
        assert answers[0].position < answers[1].position
    finally:
        centres.close()


def test_a_failure_other_than_a_conflict_fails_the_whole_group_and_stores_nothing(
    pg: PostgresServer,
) -> None:
    store = EventStore(
        load_settings(EventStoreSettings, {**pg.env(), "TUTORPULSE_POSTGRES_LOCK_TIMEOUT": "1"})
    )
    try:
        group = group_of(store)
        group.insert([event(uuid4())])  # the tables exist and the pool is warm
        before = stored(store)
        with psycopg.connect(pg.dsn()) as blocker:
            blocker.execute("LOCK TABLE tutorpulse_events IN EXCLUSIVE MODE")
            futures = in_one_group(
                group, [lambda: group.insert([event(uuid4())]) for _ in range(2)]
            )
            blocker.rollback()
        errors = [outcome(f) for f in futures]
        assert all(isinstance(e, OperationalError) for e in errors), errors
        assert stored(store) == before
    finally:
        store.close()


# --- versions a command decided on, checked at its commit ---------------------------------


def test_a_command_that_read_an_aggregate_another_command_of_its_group_wrote_is_refused(
    store: EventStore,
) -> None:
    group = group_of(store)
    shared, mine, theirs = uuid4(), uuid4(), uuid4()
    group.insert([event(shared, 1)])
    futures = in_one_group(
        group,
        [
            # writes the aggregate at version 1 -> 2
            lambda: group.insert([event(shared, 2), event(mine, 1)], expected={shared: 1}),
            # only read it, at version 1: decided on what the command before it changed
            lambda: group.insert([event(theirs, 1)], expected={shared: 1}),
        ],
    )
    written, refused = (outcome(f) for f in futures)
    assert isinstance(written, list) and isinstance(refused, StaleRead)
    assert group.fallbacks == 1
    assert [(o, v) for _, o, v in stored(store)] == [(shared, 1), (shared, 2), (mine, 1)]


def test_a_command_alone_that_read_a_stale_version_stores_nothing(store: EventStore) -> None:
    group = group_of(store)
    read_only, written = uuid4(), uuid4()
    group.insert([event(read_only, 1), event(read_only, 2)])
    with pytest.raises(StaleRead):
        group.insert([event(written, 1)], expected={read_only: 1})
    assert group.insert([event(written, 1)], expected={read_only: 2})
    assert [(o, v) for _, o, v in stored(store)] == [(read_only, 1), (read_only, 2), (written, 1)]


@pytest.fixture
def replicas(pg: PostgresServer) -> Iterator[tuple[TutoringCentres, TutoringCentres]]:
    """Two command service processes, as it were, on one PostgreSQL."""
    first = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    second = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    yield first, second
    first.close()
    second.close()


def test_a_command_on_kept_aggregates_asks_the_store_nothing_before_its_commit(
    replicas: tuple[TutoringCentres, TutoringCentres], monkeypatch: pytest.MonkeyPatch
) -> None:
    centres, _ = replicas
    centre = register_centre(centres, "alpha")
    session = session_id(centres.handle(centre["tutor"], plan()).body)
    read: list[UUID] = []
    get = centres.events.get

    def reading(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        read.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(centres.events, "get", reading)
    for student in ("ann", "ben"):
        command = EnrolStudent(session_id=session, student_id=centre[student].user_id)
        assert centres.handle(centre["tutor"], command).status_code == 201
    assert session not in read  # (the students' directory entries are read, once each)
    monkeypatch.undo()
    roster = load(centres, Session, session).roster
    assert set(roster) == {centre["ann"].user_id, centre["ben"].user_id}


def test_a_decision_on_a_kept_copy_another_process_made_stale_is_taken_again(
    replicas: tuple[TutoringCentres, TutoringCentres],
) -> None:
    first, second = replicas
    centre = register_centre(first, "alpha")
    tutor = centre["tutor"]
    session = session_id(first.handle(tutor, plan()).body)

    def enrol(centres: TutoringCentres, student: str) -> int:
        command = EnrolStudent(session_id=session, student_id=centre[student].user_id)
        return centres.handle(tutor, command).status_code

    assert enrol(first, "ann") == 201  # the first process keeps the session
    assert enrol(second, "ben") == 201  # written where the first cannot see
    assert enrol(first, "cal") == 201  # decided on the kept copy, refused, decided again
    assert set(load(second, Session, session).roster) == {
        centre[s].user_id for s in ("ann", "ben", "cal")
    }
    assert enrol(second, "dee") == 201
    with pytest.raises(RuleViolated, match="already enrolled"):
        enrol(first, "dee")


def test_a_help_request_in_a_session_another_process_just_ended_is_refused(
    replicas: tuple[TutoringCentres, TutoringCentres],
) -> None:
    """The session is only read by the help request (the student's seat is written): its kept
    copy, still running, is checked at the commit too."""
    first, second = replicas
    centre = register_centre(first, "alpha")
    tutor, ann = centre["tutor"], centre["ann"]
    session = session_id(first.handle(tutor, plan()).body)
    first.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
    first.handle(tutor, StartSession(session_id=session))
    second.handle(tutor, EndSession(session_id=session))
    with pytest.raises(DomainError):
        first.handle(ann, RaiseHelpRequest(session_id=session))
    assert not any(
        n.topic == "HelpRequestRaised" for n in first.recorder.select_notifications(1, 100)
    )


def test_a_refusal_on_a_kept_copy_another_process_made_stale_is_decided_again(
    replicas: tuple[TutoringCentres, TutoringCentres],
) -> None:
    """The kept copy says the session has not started, so a help request would be refused:
    a refusal on kept copies is not answered before it is decided again on the stored state."""
    first, second = replicas
    centre = register_centre(first, "alpha")
    tutor, ann = centre["tutor"], centre["ann"]
    session = session_id(first.handle(tutor, plan()).body)
    first.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
    second.handle(tutor, StartSession(session_id=session))
    assert first.handle(ann, RaiseHelpRequest(session_id=session)).status_code == 201
