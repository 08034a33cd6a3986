"""Reads name the generation they last found and check it in the same statement: a rebuild's
switch of generations (made by another process's store) is seen by the next read, a read never
mixes two generations, and on PostgreSQL a read is one statement on a connection lent again
without a ping, made again on a fresh connection if the one it got was closed by a restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from shared.readmodels.documents import PERSON, Person
from shared.readmodels.store import (
    GenerationSwitched,
    PostgresReadStore,
    Reads,
    ReadStore,
    ReadStoreSettings,
    StoredDoc,
    open_read_store,
)
from shared.settings import load
from shared.tenancy.roles import Role
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

CENTRE = "centre-1"


def _env(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        return {"TUTORPULSE_READ_STORE": "postgres", **pg.env()}
    return {
        "TUTORPULSE_READ_STORE": "sqlite",
        "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.db"),
    }


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ReadStore, ReadStore]]:
    """A reader (a query API or gateway) and a rebuild's store, on the same database."""
    env = _env(str(request.param), request, tmp_path)
    reader = open_read_store(load(ReadStoreSettings, env))
    rebuild = open_read_store(load(ReadStoreSettings, env))
    try:
        yield reader, rebuild
    finally:
        reader.close()
        rebuild.close()


def _write(store: ReadStore, generation: int | None, keys: list[str], version: int) -> None:
    """Each person of ``keys`` at ``version``, named after it, in ``generation``."""
    with store.transaction(generation) as tx:
        tx.put_many(
            [
                StoredDoc(
                    PERSON,
                    key,
                    CENTRE,
                    version,
                    Person(person_id=key, name=f"{key} v{version}", role=Role.STUDENT),
                )
                for key in keys
            ]
        )


def _switch(store: ReadStore, keys: list[str], version: int) -> int:
    """What a rebuild does: fill a new generation, then make it current."""
    generation = store.create_generation()
    _write(store, generation, keys, version)
    store.activate(generation)
    return generation


def _versions(reader: ReadStore, keys: list[str]) -> set[int]:
    """The versions every read of ``reader`` answers for ``keys``."""
    one = reader.get(PERSON, keys[0])
    assert one is not None
    seen = {one.version}
    seen |= {d.version for d in reader.get_many(PERSON, keys).values()}
    seen |= {d.version for d in reader.docs(PERSON)}
    seen |= {d.version for d in reader.centre_docs(PERSON, CENTRE)}
    return seen


def test_a_switch_made_by_another_store_is_seen_by_the_next_read(
    two_stores: tuple[ReadStore, ReadStore],
) -> None:
    reader, rebuild = two_stores
    keys = ["p1", "p2", "p3"]
    _write(rebuild, None, keys, 1)
    assert _versions(reader, keys) == {1}
    first = reader.generation()

    second = _switch(rebuild, keys, 2)
    assert _versions(reader, keys) == {2}
    found = reader.get(PERSON, "p2")
    assert found is not None and found.doc.name == "p2 v2"

    # Switched again and the generation the reader last read dropped, as a rebuild does.
    _switch(rebuild, keys, 3)
    rebuild.drop_generation(second)
    rebuild.drop_generation(first)
    assert _versions(reader, keys) == {3}
    assert reader.get(PERSON, "nobody") is None
    assert reader.session_log("no-session") == []


def test_a_read_of_many_documents_never_mixes_two_generations(
    two_stores: tuple[ReadStore, ReadStore],
) -> None:
    reader, rebuild = two_stores
    # More keys than SQLite reads in one statement, so its reads take several.
    keys = [f"p{i:04}" for i in range(900)]
    _write(rebuild, None, keys, 1)
    generations = {1: rebuild.generation(), 2: _switch(rebuild, keys, 2)}
    rebuild.activate(generations[1])
    done = threading.Event()
    read = threading.Event()

    def switch_back_and_forth() -> None:
        # Each switch lands while the reader reads; the next waits for a read to finish after
        # it, as a real rebuild switches once (30 switches in a burst could move under every
        # one of a read's attempts, and a read then gives up: GenerationUnsettled).
        try:
            for turn in range(30):
                read.clear()
                rebuild.activate(generations[2 - turn % 2])
                read.wait(10)
        finally:
            done.set()

    switcher = threading.Thread(target=switch_back_and_forth)
    switcher.start()
    reads = 0
    try:
        while not done.is_set() or reads < 5:
            found = reader.get_many(PERSON, keys)
            assert len(found) == len(keys)
            assert len({d.version for d in found.values()}) == 1, "a read mixed generations"
            reads += 1
            read.set()
    finally:
        switcher.join(10)


def test_a_read_on_postgresql_is_one_statement_and_no_ping(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    try:
        _write(store, None, ["p1", "p2"], 1)
        store.get(PERSON, "p1")  # learns the generation
        statements: list[str] = []
        pings: list[object] = []
        execute = psycopg.Cursor.execute
        check = ConnectionPool.check_connection

        def counted_execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
            statements.append(str(query))
            return execute(self, query, *args, **kw)

        def counted_check(connection: psycopg.Connection[Any]) -> None:
            pings.append(connection)
            check(connection)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
        monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted_check))
        for _ in range(10):
            assert store.get(PERSON, "p1") is not None
            assert len(store.get_many(PERSON, ["p1", "p2", "p3"])) == 2
        assert len(statements) == 20
        assert pings == []
    finally:
        store.close()


def test_a_read_right_after_a_postgresql_restart_answers(pg: PostgresServer) -> None:
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    try:
        _write(store, None, ["p1"], 1)
        for _ in range(8):  # every pooled connection used, and given back just now
            assert store.get(PERSON, "p1") is not None
        pg.stop()
        pg.start()
        # The pooled connections are dead and were given back less than a second ago, so
        # none was pinged: the read finds one dead and is made again on a fresh connection.
        found = store.get(PERSON, "p1")
        assert found is not None and found.version == 1
        assert len(store.get_many(PERSON, ["p1"])) == 1
    finally:
        store.close()


def test_a_writer_that_trusts_the_last_generation_never_writes_past_a_switch(
    two_stores: tuple[ReadStore, ReadStore],
) -> None:
    """The projection service takes the generation its last batch wrote on trust: after a
    rebuild's switch its next batch is refused before it writes anything (GenerationSwitched,
    on PostgreSQL, where the generation is confirmed with the batch's first reads), and the one
    after writes in the new generation."""
    writer, rebuild = two_stores
    keys = ["p1", "p2"]
    _write(writer, None, keys, 1)
    first = writer.generation()
    with writer.transaction(trust=True) as tx:
        assert tx.generation == first
        assert tx.get_many(PERSON, keys)["p1"] is not None

    second = _switch(rebuild, keys, 5)

    def write_on_trust(version: int) -> int:
        with writer.transaction(trust=True) as tx:
            found = tx.read(Reads(docs={PERSON: keys}))
            tx.put_many(
                [
                    StoredDoc(PERSON, key, CENTRE, version, doc.doc)
                    for (_, key), doc in found.docs.items()
                    if doc is not None
                ]
            )
            return tx.generation

    trusting = isinstance(writer, PostgresReadStore)  # SQLite reads it: a read costs nothing
    if trusting:
        with pytest.raises(GenerationSwitched):
            write_on_trust(2)
    assert {d.version for d in writer.docs(PERSON, first)} == {1}, "the old generation changed"
    assert write_on_trust(6) == second
    assert {d.version for d in writer.docs(PERSON)} == {6}
    assert {d.version for d in writer.docs(PERSON, first)} == {1}

    # A transaction that reads nothing is confirmed before its commit.
    third = _switch(rebuild, keys, 7)
    if trusting:
        with pytest.raises(GenerationSwitched), writer.transaction(trust=True) as tx:
            tx.set_aggregate_versions([("a", 1)])
    with writer.transaction(trust=True) as tx:
        assert tx.generation == third
        assert tx.aggregate_versions(["a"]) == {"a": 0}, "the refused write was committed"

    # A rebuild drops the generation it replaced: the trusted one's tables are gone, and the
    # batch is refused as switched, not failed.
    fourth = _switch(rebuild, keys, 8)
    rebuild.drop_generation(third)
    if trusting:
        with pytest.raises(GenerationSwitched), writer.transaction(trust=True) as tx:
            tx.read(Reads(docs={PERSON: keys}, aggregates=["a"]))
        _switch(rebuild, keys, 9)
        rebuild.drop_generation(fourth)
        with pytest.raises(GenerationSwitched), writer.transaction(trust=True) as tx:
            tx.get_many(PERSON, keys)
    assert write_on_trust(10) == writer.generation()
