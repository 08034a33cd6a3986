"""The command service keeps the aggregates it loads and reads only the events stored after
what it kept: never a stale aggregate (another replica's writes are read), never one changed by
a command that was not stored, and a long history is not read again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.command.application import TutoringCentres
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import (
    EndSession,
    EnrolStudent,
    RemoveStudent,
    StartSession,
)
from services.command.domain.aggregate import DomainError, RuleViolated
from services.command.domain.session import Session
from services.command.unit_of_work import Decision, UnitOfWork, execute, load
from shared.events import AttendanceStatus, HelpPriority
from shared.eventstore import EventStoreSettings
from shared.eventstore.cache import SNAPSHOT_AFTER, AggregateCache, StaleRate
from shared.settings import load as load_settings
from tests.builders import Centre, plan, register_centre, session_id


def replica(path: Path) -> TutoringCentres:
    return TutoringCentres(
        load_settings(
            EventStoreSettings, {"TUTORPULSE_STORE": "sqlite", "TUTORPULSE_SQLITE_PATH": str(path)}
        )
    )


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[TutoringCentres, TutoringCentres]]:
    first, second = replica(tmp_path / "events.sqlite"), replica(tmp_path / "events.sqlite")
    yield first, second
    first.close()
    second.close()


def cache_of(centres: TutoringCentres) -> AggregateCache:
    assert centres.aggregates is not None
    return centres.aggregates


def enrol(centres: TutoringCentres, centre: Centre, session: UUID, student: str) -> int:
    command = EnrolStudent(session_id=session, student_id=centre[student].user_id)
    return centres.handle(centre["tutor"], command).status_code


def test_a_kept_session_is_brought_up_to_date_with_another_replicas_writes(
    replicas: tuple[TutoringCentres, TutoringCentres],
) -> None:
    first, second = replicas
    centre = register_centre(first, "alpha")
    session = session_id(first.handle(centre["tutor"], plan()).body)
    assert enrol(first, centre, session, "ann") == 201  # the first replica keeps the session
    hits = cache_of(first).hits
    assert enrol(second, centre, session, "ben") == 201  # written where the first cannot see
    assert enrol(first, centre, session, "cal") == 201
    assert cache_of(first).hits > hits, "the first replica started from what it kept"
    for centres in replicas:
        roster = load(centres, Session, session).roster
        assert set(roster) == {centre[s].user_id for s in ("ann", "ben", "cal")}
    # And a decision on the kept copy that another replica just made stale is refused, not
    # stored over it: the same student twice is one enrolment.
    assert enrol(second, centre, session, "dee") == 201
    with pytest.raises(RuleViolated, match="already enrolled"):
        enrol(first, centre, session, "dee")


def test_a_loaded_copy_changed_but_not_stored_leaves_the_kept_aggregate_alone(
    replicas: tuple[TutoringCentres, TutoringCentres],
) -> None:
    centres, _ = replicas
    centre = register_centre(centres, "alpha")
    session = session_id(centres.handle(centre["tutor"], plan()).body)
    copy = load(centres, Session, session)
    copy.enrol(centre["ann"].user_id, by=centre["tutor"])  # decided, never committed
    again = load(centres, Session, session)
    assert again is not copy
    assert again.roster == {} and again.version == copy.version - 1


def test_a_long_history_is_read_once_then_only_what_follows_it(
    replicas: tuple[TutoringCentres, TutoringCentres], monkeypatch: pytest.MonkeyPatch
) -> None:
    centres, other = replicas
    centre = register_centre(centres, "alpha")
    session = session_id(centres.handle(centre["tutor"], plan()).body)
    long = load(other, Session, session)
    for _ in range(1000):  # 2,000 events
        long.enrol(centre["ann"].user_id, by=centre["tutor"])
        long.remove(centre["ann"].user_id, by=centre["tutor"])
    other.commit(long)
    read: list[int] = []
    events = cache_of(centres)._events
    original = events.get

    def counting(*args: Any, **kwargs: Any) -> Any:
        found = list(original(*args, **kwargs))
        read.append(len(found))
        return found

    monkeypatch.setattr(events, "get", counting)
    assert enrol(centres, centre, session, "ben") == 201
    assert enrol(centres, centre, session, "cal") == 201
    state = load(centres, Session, session)
    assert state.version == 2003
    assert state.roster.keys() == {centre["ben"].user_id, centre["cal"].user_id}
    # Read once: everything after the version the scheduling command kept. Then nothing:
    # the enrolment's own event is kept with the session it stored.
    assert read[0] == 2000, read
    assert all(n == 0 for n in read[1:]), read


def test_a_cold_load_of_a_long_history_starts_from_the_latest_snapshot_of_the_same_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.sqlite"
    writer = replica(path)
    centre = register_centre(writer, "alpha")
    session = session_id(writer.handle(centre["tutor"], plan()).body)
    long = load(writer, Session, session)
    for _ in range(1000):  # 2,000 events
        long.enrol(centre["ann"].user_id, by=centre["tutor"])
        long.remove(centre["ann"].user_id, by=centre["tutor"])
    writer.commit(long)
    assert load(writer, Session, session).version == 2001  # read in full, and a snapshot taken
    writer.close()

    def reads(centres: TutoringCentres) -> list[int]:
        read: list[int] = []
        events = cache_of(centres)._events
        original = events.get

        def counting(*args: Any, **kwargs: Any) -> Any:
            found = list(original(*args, **kwargs))
            read.append(len(found))
            return found

        monkeypatch.setattr(events, "get", counting)
        return read

    cold = replica(path)  # a process that just started
    read = reads(cold)
    assert enrol(cold, centre, session, "ben") == 201
    state = load(cold, Session, session)
    assert state.version == 2002 and set(state.roster) == {centre["ben"].user_id}
    assert read[:2] == [SNAPSHOT_AFTER, 0], read  # the snapshot, and nothing after it
    cold.close()

    monkeypatch.setattr("services.command.application.domain_fingerprint", lambda: "other code")
    changed = replica(path)  # the domain's code changed since: its snapshots are not used
    read = reads(changed)
    state = load(changed, Session, session)
    assert state.version == 2002 and set(state.roster) == {centre["ben"].user_id}
    assert read == [SNAPSHOT_AFTER, 2002 - SNAPSHOT_AFTER], read
    changed.close()


def test_the_least_recently_used_aggregates_go_first_when_too_many_are_kept(
    tmp_path: Path,
) -> None:
    centres = replica(tmp_path / "events.sqlite")
    try:
        centre = register_centre(centres, "alpha")
        sessions = [session_id(centres.handle(centre["tutor"], plan()).body) for _ in range(3)]
        small = AggregateCache(centres.events, limit=2)
        for session in sessions:
            small.keep(small.get(session, Session.project))
        assert len(small) == 2
        hits = small.hits
        small.get(sessions[0], Session.project)  # the oldest went first: read again
        assert small.hits == hits
        small.keep(small.get(sessions[2], Session.project))
        assert small.hits == hits + 1
    finally:
        centres.close()


def test_what_a_command_stored_is_kept_as_a_replay_of_the_store_would_give_it(
    replicas: tuple[TutoringCentres, TutoringCentres], monkeypatch: pytest.MonkeyPatch
) -> None:
    centres, _ = replicas
    centre = register_centre(centres, "alpha")
    tutor, ann = centre["tutor"], centre["ann"]
    session = session_id(centres.handle(tutor, plan()).body)
    read: list[int] = []
    events = cache_of(centres)._events
    original = events.get

    def counting(*args: Any, **kwargs: Any) -> Any:
        found = list(original(*args, **kwargs))
        read.append(len(found))
        return found

    monkeypatch.setattr(events, "get", counting)
    centres.handle(tutor, EnrolStudent(session_id=session, student_id=ann.user_id))
    centres.handle(tutor, StartSession(session_id=session))
    centres.handle(ann, RaiseHelpRequest(session_id=session, priority=HelpPriority.HIGH))
    records = [AttendanceRecord(student_id=ann.user_id, status=AttendanceStatus.PRESENT)]
    centres.handle(tutor, MarkAttendance(session_id=session, records=records))
    centres.handle(tutor, EndSession(session_id=session))
    # Each command found what the one before it stored already kept: no event read back.
    assert sum(read) == 0, read
    assert len(cache_of(centres)) >= 4  # the session, the tutor's week, Ann's seat and record
    monkeypatch.undo()
    assert_kept_as_stored(centres)


def assert_kept_as_stored(centres: TutoringCentres) -> None:
    """Every aggregate the process keeps is exactly a replay of its stored history, with no
    change pending: nothing a command decided without storing it."""
    for aggregate_id, entry in cache_of(centres)._entries.items():
        kept = entry.aggregate
        if kept is None:  # lent, or dropped by a command that failed
            continue
        stored = list(centres.events.get(aggregate_id))
        replayed = type(kept).project(None, stored)
        assert entry.version == kept.version == len(stored), type(kept).__name__
        assert not kept.has_changes, type(kept).__name__
        assert state_of(kept) == state_of(replayed), type(kept).__name__


def state_of(aggregate: Any) -> dict[str, Any]:
    """Every attribute of ``aggregate``, in its ``__dict__`` or its slots."""
    state = dict(getattr(aggregate, "__dict__", {}))
    for cls in type(aggregate).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(aggregate, name):
                state[name] = getattr(aggregate, name)
    return state


def test_kept_copies_stop_being_taken_unasked_while_they_are_often_stale() -> None:
    rate = StaleRate()
    for _ in range(StaleRate.FIRST):
        assert rate.trust()
        rate.record(stale=False)
    for _ in range(StaleRate.FIRST):  # another process starts writing the same aggregates
        rate.record(stale=True)
    taken = [rate.trust() for _ in range(3 * StaleRate.PROBE_EVERY)]
    assert taken.count(True) == 3  # one command in PROBE_EVERY still tries
    for _ in range(StaleRate.WINDOW):  # the other process stopped: the probes find them fresh
        rate.record(stale=False)
    assert rate.rate == 0.0 and rate.trust()


STEPS = (
    "enrol",
    "remove",
    "start",
    "end",
    "help",
    "refused after deciding",
    "crash after deciding",
)


@pytest.fixture(scope="module")
def lending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TutoringCentres, Centre]]:
    centres = replica(tmp_path_factory.mktemp("lending") / "events.sqlite")
    yield centres, register_centre(centres, "alpha")
    centres.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(STEPS), st.sampled_from(("ann", "ben", "cal"))), max_size=12
    )
)
def test_a_command_refused_or_failed_after_changing_an_aggregate_leaves_nothing_of_it_kept(
    lending: tuple[TutoringCentres, Centre], steps: list[tuple[str, str]]
) -> None:
    """Whatever commands run, succeed, are refused or fail halfway, each kept aggregate is its
    stored history replayed, and what was refused or failed is nowhere: not in the store, not
    in what the next command loads."""
    play(*lending, steps)


def play(centres: TutoringCentres, centre: Centre, steps: list[tuple[str, str]]) -> None:
    """Run ``steps`` on a new session of ``centre``, checking after each one that every kept
    aggregate is as stored, and at the end that the roster is what succeeded made it."""
    tutor = centre["tutor"]
    session = session_id(centres.handle(tutor, plan()).body)
    enrolled: set[UUID] = set()

    def half(student: UUID, failure: Exception) -> Callable[[UnitOfWork], Decision]:
        def decide(uow: UnitOfWork) -> Decision:
            state = uow.get(Session, session)
            if student in state.roster:
                state.remove(student, by=tutor)
            else:
                state.enrol(student, by=tutor)
            raise failure

        return decide

    for step, handle in steps:
        student = centre[handle].user_id
        stored = len(list(centres.events.get(session)))
        command: Any = {
            "enrol": EnrolStudent(session_id=session, student_id=student),
            "remove": RemoveStudent(session_id=session, student_id=student),
            "start": StartSession(session_id=session),
            "end": EndSession(session_id=session),
            "help": RaiseHelpRequest(session_id=session, priority=HelpPriority.LOW),
        }.get(step)
        try:
            if command is None:
                failure = RuleViolated("no") if step.startswith("refused") else RuntimeError("x")
                execute(centres, centres.directory, tutor, half(student, failure))
            else:
                actor = centre[handle] if step == "help" else tutor
                centres.handle(actor, command)
        except (DomainError, RuntimeError):
            assert len(list(centres.events.get(session))) == stored, step
        else:
            if step == "enrol":
                enrolled.add(student)
            elif step == "remove":
                enrolled.discard(student)
        assert_kept_as_stored(centres)
    assert set(load(centres, Session, session).roster) == enrolled


def test_an_aggregate_another_command_holds_is_read_and_then_copied_not_shared(
    replicas: tuple[TutoringCentres, TutoringCentres], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commands reading one session at once: the second reads it from the store the first
    time a session is found lent; from then on sessions are pickled when given back, and such
    a load thaws a copy of its own. Neither sees what the other changes."""
    centres, _ = replicas
    centre = register_centre(centres, "alpha")
    tutor = centre["tutor"]
    session = session_id(centres.handle(tutor, plan()).body)
    cache = cache_of(centres)
    read: list[UUID] = []
    get = cache._events.get

    def reading(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        read.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(cache._events, "get", reading)
    first = cache.get(session, Session.project)
    second = cache.get(session, Session.project)  # lent to the first: read from the store
    assert second is not first and second.version == first.version
    assert cache.copied == 0 and read.count(session) == 2
    cache.keep(second)  # as its command gave it back, unchanged
    assert enrol(centres, centre, session, "ann") == 201  # given back, and now pickled
    read.clear()
    holder = cache.get(session, Session.project)
    copy = cache.get(session, Session.project)
    assert cache.copied == 1 and copy is not holder and state_of(copy) == state_of(holder)
    holder.enrol(centre["ben"].user_id, by=tutor)  # decided, never stored
    assert centre["ben"].user_id not in copy.roster
    assert read == [session, session], "each asked only for what followed"
