"""Snapshots: on PostgreSQL a process that kept nothing loads a long history in one round trip,
from the latest snapshot of its own code and the events after it; on both stores an aggregate
keeps only its latest snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.command.application import TutoringCentres, domain_fingerprint
from services.command.commands.sessions import EnrolStudent
from services.command.domain.session import Session
from services.command.unit_of_work import load
from shared.eventstore import EventStoreSettings
from shared.eventstore.cache import AggregateCache, Snapshots
from shared.settings import load as load_settings
from tests.builders import plan, register_centre, session_id
from tests.support.servers import PostgresServer


def test_a_process_that_kept_nothing_starts_from_the_snapshot(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replica() -> TutoringCentres:
        return TutoringCentres(load_settings(EventStoreSettings, pg.env()))

    histories: list[tuple[bool, int]] = []
    original = Snapshots.with_history

    def spying(self: Snapshots, *args: Any) -> Any:
        found = original(self, *args)
        if found is not None:
            histories.append((found[0] is not None, len(found[1])))
        return found

    monkeypatch.setattr(Snapshots, "with_history", spying)
    writer = replica()
    centre = register_centre(writer, "alpha")
    session = session_id(writer.handle(centre["tutor"], plan()).body)
    long = load(writer, Session, session)
    for _ in range(150):  # 300 events
        long.enrol(centre["ann"].user_id, by=centre["tutor"])
        long.remove(centre["ann"].user_id, by=centre["tutor"])
    writer.commit(long)
    writer.close()

    first = replica()  # reads the whole history once, and writes a snapshot
    histories.clear()
    assert load(first, Session, session).version == 301
    assert histories == [(False, 301)]
    first.close()

    second = replica()
    histories.clear()
    command = EnrolStudent(session_id=session, student_id=centre["ben"].user_id)
    assert second.handle(centre["tutor"], command).status_code == 201
    assert histories[0] == (True, 0), histories  # the snapshot, nothing after it
    state = load(second, Session, session)
    assert state.version == 302 and set(state.roster) == {centre["ben"].user_id}
    second.close()

    third = replica()  # another process again: the snapshot and the one event after it
    histories.clear()
    again = load(third, Session, session)
    assert histories == [(True, 1)]
    assert again.version == 302 and set(again.roster) == {centre["ben"].user_id}
    assert load(third, Session, session).removed_students == state.removed_students
    third.close()


def test_a_snapshot_that_cannot_be_unpickled_is_passed_over(pg: PostgresServer) -> None:
    centres = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    try:
        centre = register_centre(centres, "alpha")
        session = session_id(centres.handle(centre["tutor"], plan()).body)
        long = load(centres, Session, session)
        for _ in range(40):  # 80 events
            long.enrol(centre["ann"].user_id, by=centre["tutor"])
            long.remove(centre["ann"].user_id, by=centre["tutor"])
        centres.commit(long)
        snapshots = Snapshots(centres.snapshot_recorder(), domain_fingerprint())
        snapshots.write(session, 81, b"\x80\x05not a pickle")  # e.g. a class since renamed
        cold = AggregateCache(centres.events, snapshots=snapshots)
        state = cold.get(session, Session.project)
        assert state.version == 81 and state.roster == {}
        assert snapshots.latest(session) is None
    finally:
        centres.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_new_snapshot_replaces_the_older_ones_of_its_aggregate_alone(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = (
        request.getfixturevalue("pg").env()
        if store == "postgres"
        else {"TUTORPULSE_STORE": "sqlite", "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.db")}
    )

    def replica() -> TutoringCentres:
        return TutoringCentres(load_settings(EventStoreSettings, env))

    writer = replica()
    centre = register_centre(writer, "alpha")
    busy, quiet = (
        session_id(writer.handle(centre["tutor"], plan(hours_from_now=hours)).body)
        for hours in (1, 3)
    )
    snapshots = writer.snapshot_recorder()

    def lengthen(session: UUID) -> None:  # 80 events more, then a cold load snapshots it
        long = load(writer, Session, session)
        for _ in range(40):
            long.enrol(centre["ann"].user_id, by=centre["tutor"])
            long.remove(centre["ann"].user_id, by=centre["tutor"])
        writer.commit(long)
        cold = replica()
        assert load(cold, Session, session).version == long.version
        cold.close()

    def snapshotted(session: UUID) -> list[int]:
        return [stored.originator_version for stored in snapshots.select_events(session)]

    lengthen(quiet)
    for version in (81, 161, 241):
        lengthen(busy)
        assert snapshotted(busy) == [version]
    assert snapshotted(quiet) == [81]
    cold = replica()
    state = load(cold, Session, busy)
    assert state.version == 241 and state.roster == {}
    cold.close()
    writer.close()
