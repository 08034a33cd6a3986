"""A read of many documents finds each by its key, whatever characters the key holds: on
PostgreSQL the keys travel as one binary array, on SQLite as a list of parameters, and both
answer alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.readmodels.documents import PERSON, Person
from shared.readmodels.store import ReadStore, ReadStoreSettings, StoredDoc, open_read_store
from shared.settings import load
from shared.tenancy.roles import Role
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

CENTRE = "centre-1"
AWKWARD_KEYS = [
    "plain",
    'with "quotes"',
    "with, a comma",
    "{braces}",
    "back\\slash",
    "NULL",
    "",
    " spaced ",
    "ünïcödé ✓",
    "it's",
]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        env = {"TUTORPULSE_READ_STORE": "postgres", **pg.env()}
    else:
        env = {
            "TUTORPULSE_READ_STORE": "sqlite",
            "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.db"),
        }
    opened = open_read_store(load(ReadStoreSettings, env))
    try:
        yield opened
    finally:
        opened.close()


def test_a_read_of_many_keys_finds_each_whatever_its_characters(store: ReadStore) -> None:
    written = AWKWARD_KEYS[::2]
    with store.transaction() as tx:
        tx.put_many(
            [
                StoredDoc(
                    PERSON, key, CENTRE, 1, Person(person_id=key, name=key, role=Role.STUDENT)
                )
                for key in written
            ]
        )
    found = store.get_many(PERSON, [*AWKWARD_KEYS, "not written"])
    assert sorted(found) == sorted(written)
    assert all(found[key].doc.name == key for key in written)
