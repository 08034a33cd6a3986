"""The PostgreSQL read store serialises writers of one document, even one that does not exist
yet; reads made together answer as each alone."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable

import msgspec
import psycopg
import pytest

from shared.readmodels.documents import CENTRE, PERSON, Centre, LogRow, Person
from shared.readmodels.store import (
    Found,
    Reads,
    ReadStore,
    ReadStoreSettings,
    StoredDoc,
    Transaction,
    open_read_store,
)
from shared.readmodels.store.postgres import BigintArray, TextArray
from shared.readmodels.store.transaction import passed
from shared.settings import load
from shared.tenancy import Role
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration


def test_a_second_writer_of_the_same_documents_waits_for_the_first(pg: PostgresServer) -> None:
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    try:
        second_done = threading.Event()
        independent_done = threading.Event()

        def second_writer() -> None:
            with store.transaction() as tx:
                tx.get_many(
                    "session", ["b", "a"]
                )  # same keys, other order: must wait, not deadlock
            second_done.set()

        def independent_writer() -> None:
            with store.transaction() as tx:
                tx.get_many("session", ["c"])
            independent_done.set()

        with store.transaction() as first:
            first.get_many("session", ["a", "b"])
            others = [
                threading.Thread(target=second_writer),
                threading.Thread(target=independent_writer),
            ]
            for thread in others:
                thread.start()
            assert independent_done.wait(5), "a writer of other documents must not wait"
            time.sleep(0.3)
            assert not second_done.is_set(), (
                "the second writer went ahead while the first held the keys"
            )
        assert second_done.wait(5)
        for thread in others:
            thread.join(5)
    finally:
        store.close()


def fresh_store(kind: str, pg: PostgresServer, tmp_path: pathlib.Path, name: str) -> ReadStore:
    """An empty read store of ``kind``: a database of its own on PostgreSQL."""
    where = (
        {"TUTORPULSE_READ_STORE": "postgres", **pg.fresh_database(name).env()}
        if kind == "postgres"
        else {
            "TUTORPULSE_READ_STORE": "sqlite",
            "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / name),
        }
    )
    return open_read_store(load(ReadStoreSettings, where))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_watermark_only_moves_forward(
    kind: str, pg: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """Replicas record the ack floor they read, in any order: an older one never wins."""
    store = fresh_store(kind, pg, tmp_path, "watermark")
    try:
        store.ensure_ready()
        assert store.watermark() == 0
        store.advance_watermark(10)
        store.advance_watermark(4)
        assert store.watermark() == 10
        store.advance_watermark(12)
        assert store.watermark() == 12
    finally:
        store.close()


def test_arrays_are_sent_as_postgresql_reads_them(pg: PostgresServer) -> None:
    """The store's own binary dumpers of string and integer arrays: PostgreSQL reads back
    every element as sent, whatever its characters, size or sign, nulls and empty arrays too."""
    texts = ["", "Zoë 🎓", 'quote " and \\ backslash', "x" * 70_000, None, "{a,b}"]
    numbers = [0, -1, 2**62, -(2**63), 7]
    with psycopg.connect(pg.fresh_database("arrays").dsn(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT %b::text[], %b::bigint[], %b::text[], %b::bigint[], cardinality(%b::text[])",
            (
                TextArray(texts),
                BigintArray(numbers),
                TextArray([]),
                BigintArray([]),
                TextArray(texts),
            ),
        ).fetchone()
    assert rows == (texts, numbers, [], [], len(texts))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_transaction_s_writes_are_seen_by_its_own_reads_and_land_together(
    kind: str, pg: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """On PostgreSQL a transaction holds its writes back and sends them as one statement: its
    own later reads still see them, a second write of the same document wins, and documents,
    log rows, versions and the watermark all land at the commit, or none of them."""
    store = fresh_store(kind, pg, tmp_path, "held")
    person = Person(person_id="k", name="Kim", role=Role.STUDENT)
    renamed = Person(person_id="k", name="Kim Lee", role=Role.STUDENT)
    row = LogRow(
        notification_id=7,
        session_id="s",
        centre_id="c",
        aggregate_id="a",
        aggregate_version=1,
        occurred_at="2026-12-05T09:00:00Z",
        event_type="AttendanceMarked",
        actor_id="t",
        actor_role="TUTOR",
        event={"status": "PRESENT"},
    )
    try:
        store.ensure_ready()
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.put_many([StoredDoc(PERSON, "k", "c", 1, person)])
            tx.advance_watermark(7)
            raise RuntimeError("the batch fails before its commit")
        assert (store.get(PERSON, "k"), store.watermark()) == (None, 0)

        with store.transaction() as tx:
            tx.put_many([StoredDoc(PERSON, "k", "c", 1, person)])
            tx.append_logs([row])
            tx.set_aggregate_versions([("a", 1)])
            tx.advance_watermark(7)
            seen = tx.get(PERSON, "k")
            assert seen is not None and seen.doc == person
            assert tx.aggregate_versions(["a"]) == {"a": 1}
            tx.put_many([StoredDoc(PERSON, "k", "c", 2, renamed)])
            tx.set_aggregate_versions([("a", 2)])
        stored = store.get(PERSON, "k")
        assert stored is not None and (stored.version, stored.doc) == (2, renamed)
        assert store.session_log("s") == [row]
        assert store.watermark() == 7
        with store.transaction() as tx:
            assert tx.aggregate_versions(["a"]) == {"a": 2}
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_writes_without_reads_land_as_a_read_before_writing_would(
    kind: str, pg: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """The projection service writes without reading first: a document put whole lands at its
    stored version (0 for a new one) plus the events that touched it, whoever is told that
    version learns it once the batch is in, and an aggregate's version passes the
    dead-lettered versions right after it. A batch that fails writes none of it."""
    store = fresh_store(kind, pg, tmp_path, "unread")
    person = Person(person_id="k", name="Kim", role=Role.STUDENT)
    renamed = Person(person_id="k", name="Kim Lee", role=Role.STUDENT)
    newcomer = Person(person_id="n", name="Noor", role=Role.STUDENT)
    centre = Centre(centre_id="c", name="Centre", time_zone="UTC", help_sla_minutes={})
    try:
        store.ensure_ready()
        with store.transaction() as tx:
            tx.put_many([StoredDoc(PERSON, "k", "c", 7, person)])
            tx.set_aggregate_versions([("a", 4), ("b", 1), ("c", 1)])
            for aggregate_id, version in (("a", 9), ("a", 6), ("a", 7), ("c", 2), ("c", 3)):
                tx.skip(aggregate_id, version, 100 + version, "AttendanceMarked", "poison")
        told: list[dict[tuple[str, str], int]] = []
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.put_counted([StoredDoc(PERSON, "k", "c", 2, renamed)], told.append)
            tx.set_versions_past_skipped([("a", 5)])
            raise RuntimeError("the batch fails before its commit")
        assert told in ([], [{("person", "k"): 9}])  # told before the commit, or never
        told.clear()
        stored = store.get(PERSON, "k")
        assert stored is not None and (stored.version, stored.doc) == (7, person)

        with store.transaction() as tx:
            before = tx.skipped_versions(["a", "b", "c", "new"])
            tx.put_counted(
                [StoredDoc(PERSON, "k", "c", 2, renamed), StoredDoc(PERSON, "n", "c", 1, newcomer)],
                told.append,
            )
            tx.put_many([StoredDoc(CENTRE, "c", "c", 1, centre)])
            tx.set_versions_past_skipped([("a", 5), ("b", 2), ("c", 1), ("new", 1)])
            tx.advance_watermark(12)
        assert told == [{("person", "k"): 9, ("person", "n"): 1}]
        for key, version, doc in (("k", 9, renamed), ("n", 1, newcomer)):
            stored = store.get(PERSON, key)
            assert stored is not None and (stored.version, stored.doc) == (version, doc)
        assert store.get(CENTRE, "c") == StoredDoc(CENTRE, "c", "c", 1, centre)
        assert store.watermark() == 12
        reached = {"a": 7, "b": 2, "c": 3, "new": 1}  # 9 waits for 8
        assert passed({"a": 5, "b": 2, "c": 1, "new": 1}, before) == reached
        with store.transaction() as tx:
            assert tx.aggregate_versions(["a", "b", "c", "new"]) == reached
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_reads_made_together_answer_as_each_made_alone(
    kind: str, pg: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """A projection batch's step of reads (documents of several kinds, sharing keys, missing
    ones, versions alone, aggregates, dead-lettered versions) answers what each read alone
    answers."""
    store = fresh_store(kind, pg, tmp_path, "together")
    try:
        centre = Centre(centre_id="c", name="Centre", time_zone="UTC", help_sla_minutes={})
        person = Person(person_id="k", name="Kim", role=Role.STUDENT)
        with store.transaction() as tx:
            tx.put_many(
                [
                    StoredDoc(CENTRE, "k", "c", 3, centre),  # the same key as the person
                    StoredDoc(PERSON, "k", "c", 7, person),
                    StoredDoc(PERSON, "m", "c", 2, msgspec.structs.replace(person, person_id="m")),
                ]
            )
            tx.set_aggregate_versions([("a", 4), ("b", 1)])
            for version in (9, 6, 7):  # after a gap: recorded, answered in ascending order
                tx.skip("a", version, 100 + version, "AttendanceMarked", "poison")
        wanted = Reads(
            docs={CENTRE: ["k", "gone"], PERSON: ["k", "m"]},
            aggregates=["a", "b", "new"],
            versions={PERSON: ["m", "absent"]},
            skipped=["a", "b"],
        )
        with store.transaction() as tx:
            together = tx.read(wanted)
            alone = Found(
                docs={
                    **{("centre", k): d for k, d in tx.get_many(CENTRE, ["k", "gone"]).items()},
                    **{("person", k): d for k, d in tx.get_many(PERSON, ["k", "m"]).items()},
                },
                aggregates=tx.aggregate_versions(["a", "b", "new"]),
                versions={
                    ("person", k): v for k, v in tx.doc_versions(PERSON, ["m", "absent"]).items()
                },
                skipped=tx.skipped_versions(["a", "b"]),
            )
        assert together == alone
        assert together.docs[("centre", "k")] == StoredDoc(CENTRE, "k", "c", 3, centre)
        assert together.docs[("person", "k")] == StoredDoc(PERSON, "k", "c", 7, person)
        assert together.docs[("centre", "gone")] is None
        assert together.aggregates == {"a": 4, "b": 1, "new": 0}
        assert together.versions == {("person", "m"): 2, ("person", "absent"): 0}
        assert together.skipped == {"a": [6, 7, 9]}
        # Once version 5 is in, the dead-lettered 6 and 7 are passed; 9 waits for 8.
        assert passed({**together.aggregates, "a": 5}, together.skipped) == {
            "a": 7,
            "b": 1,
            "new": 0,
        }
    finally:
        store.close()


def test_reads_made_together_lock_what_they_read(pg: PostgresServer) -> None:
    """Another writer of a document or aggregate read in a step waits for the transaction."""
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    try:
        waiting = {name: threading.Event() for name in ("document", "aggregate", "version")}

        def writer(name: str, read: Callable[[Transaction], object]) -> None:
            with store.transaction() as tx:
                read(tx)
            waiting[name].set()

        others = [
            threading.Thread(
                target=writer, args=("document", lambda tx: tx.get_many(PERSON, ["p"]))
            ),
            threading.Thread(
                target=writer, args=("aggregate", lambda tx: tx.aggregate_versions(["g"]))
            ),
            threading.Thread(
                target=writer, args=("version", lambda tx: tx.doc_versions(CENTRE, ["v"]))
            ),
        ]
        with store.transaction() as first:
            first.read(Reads(docs={PERSON: ["p"]}, aggregates=["g"], versions={CENTRE: ["v"]}))
            for thread in others:
                thread.start()
            time.sleep(0.3)
            assert not any(done.is_set() for done in waiting.values()), (
                "a writer went ahead while the first held the keys"
            )
        for name, done in waiting.items():
            assert done.wait(5), f"the {name} writer never went ahead"
        for thread in others:
            thread.join(5)
    finally:
        store.close()
