"""The key store on SQLite: one key per person, kept wrapped; erasure destroys it for good and
leaves a tombstone; kept keys go stale in a bounded time; master keys rotate; a service without
a master key refuses to start outside development mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from structlog.testing import capture_logs

from shared.eventstore.settings import EventStoreSettings, SchemaSettings
from shared.privacy import (
    DataKey,
    Erased,
    FieldCipher,
    KeyStore,
    LocalKms,
    PersonErased,
    PrivacyConfigurationError,
    PrivacySettings,
    UnwrapError,
    create_key_table,
    key_wrapper,
    new_master_key,
    open_key_store,
)
from shared.privacy.keys import TABLE
from shared.privacy.kms import DEV_MASTER_KEY_ID, parse_master_keys
from shared.schema import MissingTables

ADMIN = UUID(int=1)
CENTRE = "main-campus"
M1 = {"m1": b"1" * 32}
M2 = {"m2": b"2" * 32}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> EventStoreSettings:
    return EventStoreSettings(sqlite_path=tmp_path / "tutorpulse.sqlite")


@pytest.fixture
def keys(settings: EventStoreSettings) -> Iterator[KeyStore]:
    store = KeyStore(settings, PrivacySettings(), LocalKms(M1))
    yield store
    store.close()


def rows(settings: EventStoreSettings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.sqlite_path) as connection:
        return connection.execute(f"SELECT * FROM {TABLE}").fetchall()


def test_a_person_has_one_key_whoever_asks(settings: EventStoreSettings, keys: KeyStore) -> None:
    person = uuid4()
    assert keys.fetch(CENTRE, person) is None
    key = keys.get_or_create(CENTRE, person)
    other = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(M1))
    try:
        assert other.get_or_create(CENTRE, person) == key
        assert other.fetch(CENTRE, person) == key
        assert keys.get_or_create("north-campus", person) != key
    finally:
        other.close()
    stored = rows(settings)
    assert len(stored) == 2
    assert all(key.secret not in bytes(row[4]) for row in stored)


def test_erasure_destroys_the_key_and_keeps_who_when_and_why(
    settings: EventStoreSettings, keys: KeyStore
) -> None:
    person, never = uuid4(), uuid4()
    key = keys.get_or_create(CENTRE, person)
    wrapped = bytes(rows(settings)[0][4])

    erased = keys.destroy(CENTRE, person, erased_by=ADMIN, reason="  parent's request ")
    assert (erased.erased_by, erased.reason, erased.key_id) == (
        ADMIN,
        "parent's request",
        key.key_id,
    )
    assert keys.fetch(CENTRE, person) == erased
    assert keys.fetch(CENTRE, never) is None
    with pytest.raises(PersonErased):
        keys.get_or_create(CENTRE, person)
    # Erasing again keeps the first erasure.
    assert keys.destroy(CENTRE, person, erased_by=uuid4(), reason="again") == erased
    (row,) = rows(settings)
    assert row[3:5] == (None, None)
    keys.close()
    for path in settings.sqlite_path.parent.iterdir():
        if path.name.startswith(settings.sqlite_path.name) and not path.name.endswith("-wal"):
            assert wrapped not in path.read_bytes(), f"the wrapped key is still in {path.name}"


def test_a_person_without_a_key_can_be_erased_and_gets_none_later(keys: KeyStore) -> None:
    person = uuid4()
    erased = keys.destroy(CENTRE, person, erased_by=ADMIN, reason="request")
    assert erased.key_id is None and keys.fetch(CENTRE, person) == erased
    with pytest.raises(PersonErased):
        keys.get_or_create(CENTRE, person)
    with pytest.raises(ValueError, match="reason"):
        keys.destroy(CENTRE, uuid4(), erased_by=ADMIN, reason=" ")


def test_another_process_stops_using_a_destroyed_key_within_the_cache_time(
    settings: EventStoreSettings, keys: KeyStore
) -> None:
    clock = Clock()
    replica = KeyStore(settings, PrivacySettings(key_cache_seconds=5), LocalKms(M1), clock=clock)
    try:
        person = uuid4()
        sealed = FieldCipher(keys).encrypt("Jane", centre_id=CENTRE, person_id=person)
        reader = FieldCipher(replica)
        assert reader.decrypt(sealed, centre_id=CENTRE) == "Jane"
        keys.destroy(CENTRE, person, erased_by=ADMIN, reason="request")
        clock.now = 4.9
        assert reader.decrypt(sealed, centre_id=CENTRE) == "Jane"
        clock.now = 5.0
        assert isinstance(reader.decrypt(sealed, centre_id=CENTRE), Erased)
        # In the process that erased, at once.
        assert isinstance(
            FieldCipher(keys).decrypt(sealed, centre_id=CENTRE),
            Erased,
        )
    finally:
        replica.close()


def test_a_read_that_began_before_the_erasure_does_not_bring_the_key_back(
    keys: KeyStore,
) -> None:
    person = uuid4()
    key = keys.get_or_create(CENTRE, person)
    erased = keys.destroy(CENTRE, person, erased_by=ADMIN, reason="request")
    keys._cache.put(CENTRE, person, key)  # what a slower reader of the old row would keep
    assert keys.fetch(CENTRE, person) == erased


def test_the_cache_keeps_at_most_its_size(settings: EventStoreSettings) -> None:
    store = KeyStore(settings, PrivacySettings(key_cache_size=3), LocalKms(M1))
    try:
        for _ in range(10):
            store.get_or_create(CENTRE, uuid4())
        assert len(store._cache) == 3
    finally:
        store.close()


def test_a_master_key_rotation_rewraps_every_key(settings: EventStoreSettings) -> None:
    old = KeyStore(settings, PrivacySettings(), LocalKms(M1))
    people = [uuid4() for _ in range(5)]
    made = {person: old.get_or_create(CENTRE, person) for person in people}
    old.destroy(CENTRE, people[0], erased_by=ADMIN, reason="request")
    old.close()

    rotated = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(M2 | M1))
    try:
        assert rotated.fetch(CENTRE, people[1]) == made[people[1]]
        assert rotated.get_or_create(CENTRE, uuid4()) is not None
        assert rotated.rewrap(batch=2) == 4
        assert rotated.rewrap() == 0
    finally:
        rotated.close()
    assert {row[3] for row in rows(settings) if row[4] is not None} == {"m2"}

    only_new = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(M2))
    try:
        for person in people[1:]:
            assert only_new.fetch(CENTRE, person) == made[person]
        assert isinstance(only_new.fetch(CENTRE, people[0]), Erased)
    finally:
        only_new.close()
    without_it = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(M1))
    try:
        with pytest.raises(UnwrapError, match="m2"):
            without_it.fetch(CENTRE, people[1])
    finally:
        without_it.close()


def test_a_wrapped_key_moved_to_another_person_does_not_unwrap(
    settings: EventStoreSettings, keys: KeyStore
) -> None:
    jane, john = uuid4(), uuid4()
    keys.get_or_create(CENTRE, jane)
    keys.get_or_create(CENTRE, john)
    with sqlite3.connect(settings.sqlite_path) as connection:
        connection.execute(
            f"UPDATE {TABLE} SET (key_id, wrapped_key) = (SELECT key_id, wrapped_key FROM "
            f"{TABLE} WHERE person_id = ?) WHERE person_id = ?",
            (str(jane), str(john)),
        )
    fresh = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms(M1))
    try:
        with pytest.raises(UnwrapError, match="another person"):
            fresh.fetch(CENTRE, john)
        assert isinstance(fresh.fetch(CENTRE, jane), DataKey)
    finally:
        fresh.close()


def test_without_table_creation_a_missing_table_stops_the_service(
    settings: EventStoreSettings,
) -> None:
    may_not_create = replace(settings, schema=SchemaSettings(create_tables=False))
    with pytest.raises(MissingTables, match=TABLE):
        KeyStore(may_not_create, PrivacySettings(), LocalKms(M1))
    create_key_table(settings)
    KeyStore(may_not_create, PrivacySettings(), LocalKms(M1)).close()


def test_outside_development_mode_a_master_key_is_required() -> None:
    with pytest.raises(PrivacyConfigurationError, match="required outside development mode"):
        key_wrapper(PrivacySettings(), dev_mode=False)
    assert key_wrapper(PrivacySettings(), dev_mode=True).current_key_id == DEV_MASTER_KEY_ID
    configured = key_wrapper(
        PrivacySettings(master_keys=f"b={new_master_key()}, a={new_master_key()}"), dev_mode=False
    )
    assert configured.current_key_id == "b"
    for bad, said in [
        ("a", "id=key"),
        (f"a={new_master_key()},a={new_master_key()}", "twice"),
        ("a=c2hvcnQ", "bytes"),
        ("a=!!!", "base64url"),
    ]:
        with pytest.raises(PrivacyConfigurationError, match=said):
            parse_master_keys(bad)


def test_a_service_without_a_master_key_outside_development_mode_does_not_start(
    settings: EventStoreSettings,
) -> None:
    with capture_logs() as logs, pytest.raises(PrivacyConfigurationError):
        open_key_store("command", settings, PrivacySettings(), dev_mode=False)
    assert [(e["event"], e["service"]) for e in logs] == [("privacy.misconfigured", "command")]
    assert not settings.sqlite_path.exists()  # nothing was opened
    configured = PrivacySettings(master_keys=f"k1={new_master_key()}")
    store = open_key_store("command", settings, configured, dev_mode=False)
    try:
        assert isinstance(store.get_or_create(CENTRE, uuid4()), DataKey)
    finally:
        store.close()
