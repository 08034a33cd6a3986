"""The key store on PostgreSQL: replicas making the same person's key at the same moment end
with one key; an erasure is seen by every replica within the cache time; the migration makes
the table for services that may not."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from services.migrate.migration import create_tables
from services.migrate.settings import MigrateSettings
from shared.eventstore import EventStoreSettings
from shared.eventstore.settings import SchemaSettings
from shared.privacy import (
    DataKey,
    Erased,
    FieldCipher,
    KeyStore,
    LocalKms,
    PersonErased,
    PrivacySettings,
    create_key_table,
)
from shared.privacy.keys import TABLE
from shared.schema import MissingTables
from shared.settings import load
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration
CENTRE = "main-campus"
MASTER = {"m1": b"m" * 32}
REPLICAS = 6


class Together(LocalKms):
    """Wraps only once every replica has found no key and is about to store its own, so that
    all of them race to insert."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__(MASTER)
        self.barrier = barrier

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        self.barrier.wait(timeout=30)
        return super().wrap(key, context)


@pytest.fixture
def settings(pg: PostgresServer) -> EventStoreSettings:
    return load(EventStoreSettings, pg.env())


@pytest.fixture
def replicas(settings: EventStoreSettings) -> Iterator[list[KeyStore]]:
    barrier = threading.Barrier(REPLICAS)
    stores = [KeyStore(settings, PrivacySettings(), Together(barrier)) for _ in range(REPLICAS)]
    yield stores
    for store in stores:
        store.close()


def key_rows(pg: PostgresServer) -> list[tuple[object, ...]]:
    with psycopg.connect(pg.dsn()) as connection:
        return connection.execute(
            f"SELECT centre_id, person_id, key_id, wrapped_key IS NULL, erased_by, "
            f"erasure_reason FROM {TABLE}"
        ).fetchall()


def test_replicas_making_one_persons_key_at_once_end_with_one_key(
    pg: PostgresServer, replicas: list[KeyStore]
) -> None:
    for _ in range(3):
        person = uuid4()
        with ThreadPoolExecutor(REPLICAS) as pool:
            made = list(
                pool.map(KeyStore.get_or_create, replicas, [CENTRE] * REPLICAS, [person] * REPLICAS)
            )
        assert len(set(made)) == 1
        assert all(store.fetch(CENTRE, person) == made[0] for store in replicas)
    assert len(key_rows(pg)) == 3


def make_keys(
    settings: EventStoreSettings,
    people: list[UUID],
    start: threading.Barrier,
    results: multiprocessing.Queue[dict[UUID, tuple[str, bytes]]],
) -> None:
    """A replica in a process of its own: makes its keys of ``people`` once every replica is
    ready, and sends them back."""
    store = KeyStore(settings, PrivacySettings(), LocalKms(MASTER))
    try:
        start.wait(timeout=60)
        made = {person: store.get_or_create(CENTRE, person) for person in people}
        results.put({person: (key.key_id, key.secret) for person, key in made.items()})
    finally:
        store.close()


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
def test_replica_processes_making_the_same_keys_at_once_end_with_one_each(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = (
        load(EventStoreSettings, request.getfixturevalue("pg").env())
        if store == "postgres"
        else EventStoreSettings(sqlite_path=tmp_path / "tutorpulse.sqlite")
    )
    create_key_table(settings)
    people = [uuid4() for _ in range(30)]
    # Forked: the replicas start from this process's imports (no pool is open here then).
    context = multiprocessing.get_context("fork")
    start = context.Barrier(3)
    results: multiprocessing.Queue[dict[UUID, tuple[str, bytes]]] = context.Queue()
    replicas = [
        context.Process(target=make_keys, args=(settings, people, start, results)) for _ in range(3)
    ]
    for replica in replicas:
        replica.start()
    try:
        made = [results.get(timeout=120) for _ in replicas]
    finally:
        for replica in replicas:
            replica.join(timeout=30)
    assert [replica.exitcode for replica in replicas] == [0, 0, 0]
    assert made[0] == made[1] == made[2]
    assert len({key_id for key_id, _ in made[0].values()}) == len(people)


def test_an_erasure_on_one_replica_is_final_on_every_replica(
    pg: PostgresServer, settings: EventStoreSettings
) -> None:
    clock = [0.0]
    first = KeyStore(settings, PrivacySettings(), LocalKms(MASTER))
    second = KeyStore(
        settings, PrivacySettings(key_cache_seconds=5), LocalKms(MASTER), clock=lambda: clock[0]
    )
    try:
        person, admin = uuid4(), UUID(int=1)
        sealed = FieldCipher(first).encrypt("Jane", centre_id=CENTRE, person_id=person)
        reader = FieldCipher(second)
        assert reader.decrypt(sealed, centre_id=CENTRE) == "Jane"
        erased = first.destroy(CENTRE, person, erased_by=admin, reason="parent's request")
        assert (erased.erased_by, erased.reason) == (admin, "parent's request")
        clock[0] = 5.0
        assert reader.decrypt(sealed, centre_id=CENTRE) == erased
        with pytest.raises(PersonErased):
            second.get_or_create(CENTRE, person)
        assert key_rows(pg) == [(CENTRE, person, erased.key_id, True, admin, "parent's request")]
        assert isinstance(first.fetch(CENTRE, person), Erased)
    finally:
        first.close()
        second.close()


def test_an_erasure_racing_key_makers_wins(
    pg: PostgresServer, settings: EventStoreSettings
) -> None:
    """Whatever the order, once the erasure is committed the person has no usable key, and a
    key handed out meanwhile is the very one destroyed."""
    stores = [
        KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(MASTER)) for _ in range(4)
    ]
    try:
        for _ in range(5):
            person = uuid4()
            start = threading.Barrier(len(stores))

            def act(index: int, person: UUID = person, start: threading.Barrier = start) -> object:
                start.wait(timeout=30)
                if index == 0:
                    return stores[0].destroy(CENTRE, person, erased_by=UUID(int=1), reason="r")
                try:
                    return stores[index].get_or_create(CENTRE, person)
                except PersonErased as refused:
                    return refused.erased

            with ThreadPoolExecutor(len(stores)) as pool:
                outcomes = list(pool.map(act, range(len(stores))))
            erased = outcomes[0]
            assert isinstance(erased, Erased)
            for outcome in outcomes[1:]:
                assert outcome == erased or (
                    isinstance(outcome, DataKey) and outcome.key_id == erased.key_id
                )
            assert all(store.fetch(CENTRE, person) == erased for store in stores)
    finally:
        for store in stores:
            store.close()


def test_the_migration_makes_the_table_a_service_may_not_make(
    pg: PostgresServer, settings: EventStoreSettings
) -> None:
    may_not_create = replace(settings, schema=SchemaSettings(create_tables=False))
    with pytest.raises(MissingTables, match=TABLE):
        KeyStore(may_not_create, PrivacySettings(), LocalKms(MASTER))
    create_tables(load(MigrateSettings, {**pg.env(), "TUTORPULSE_READ_STORE": "postgres"}))
    store = KeyStore(may_not_create, PrivacySettings(), LocalKms(MASTER))
    try:
        assert isinstance(store.get_or_create(CENTRE, uuid4()), DataKey)
    finally:
        store.close()
