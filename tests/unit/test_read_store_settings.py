"""The read store reaches PostgreSQL with the event store's libpq parameters (timeouts, TCP
keepalives), and on SQLite waits out only what is not the event's fault."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from shared.eventstore import EventStoreSettings
from shared.eventstore.store import postgres_conninfo, store_env
from shared.readmodels.store import PostgresSettings, ReadStoreSettings, SQLiteReadStore
from shared.settings import load

EVENT_STORE = {
    "TUTORPULSE_STORE": "postgres",
    "TUTORPULSE_POSTGRES_HOST": "db.internal",
    "TUTORPULSE_POSTGRES_PASSWORD": "x",
}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "TUTORPULSE_POSTGRES_CONNECT_TIMEOUT": "7",
            "TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT": "0.25",
        },
        {"TUTORPULSE_POSTGRES_CONNECT_TIMEOUT": "1", "TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT": "0"},
    ],
)
def test_the_read_store_connects_like_the_event_store(settings: dict[str, str]) -> None:
    env = EVENT_STORE | settings
    read = conninfo_to_dict(PostgresSettings.of(load(ReadStoreSettings, env)).conninfo)
    assert read == conninfo_to_dict(postgres_conninfo(store_env(load(EventStoreSettings, env))))
    assert read["keepalives"] == "1" and read["keepalives_idle"] == "5"


def test_read_store_settings_override_the_event_stores() -> None:
    settings = PostgresSettings.of(
        load(
            ReadStoreSettings,
            EVENT_STORE
            | {
                "TUTORPULSE_READ_POSTGRES_HOST": "replica.internal",
                "TUTORPULSE_READ_POSTGRES_STATEMENT_TIMEOUT": "2",
                "TUTORPULSE_READ_POSTGRES_PRE_PING": "no",
                "TUTORPULSE_POSTGRES_CONN_MAX_AGE": "60",
            },
        )
    )
    parameters = conninfo_to_dict(settings.conninfo)
    assert parameters["host"] == "replica.internal" and parameters["connect_timeout"] == "3"
    assert parameters["options"] == "-c statement_timeout=2000"
    assert (settings.connect_timeout, settings.pre_ping, settings.max_age) == (3.0, False, 60.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUTORPULSE_READ_POSTGRES_CONNECT_TIMEOUT", "soon"),
        ("TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT", "-1"),
        ("TUTORPULSE_READ_POSTGRES_PRE_PING", "maybe"),
    ],
)
def test_a_mistyped_read_store_setting_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable.replace("TUTORPULSE_READ_", "TUTORPULSE_")[11:]):
        PostgresSettings.of(load(ReadStoreSettings, EVENT_STORE | {variable: value}))


def test_sqlite_outages_are_locks_and_disks_not_mistakes(tmp_path: Path) -> None:
    store = SQLiteReadStore(tmp_path / "read.sqlite")
    connection = sqlite3.connect(tmp_path / "other.sqlite")
    with pytest.raises(sqlite3.OperationalError) as mistake:
        connection.execute("SELECT * FROM rm_docs_99")
    with pytest.raises(sqlite3.OperationalError) as unopenable:
        sqlite3.connect(tmp_path).execute("SELECT 1")  # a folder, not a database file
    connection.close()

    assert not store.is_unavailable(mistake.value)  # no such table: about what was asked
    assert store.is_unavailable(unopenable.value)
    assert store.is_unavailable(sqlite3.OperationalError("database is locked"))  # as HTTP says
    assert store.is_unavailable(sqlite3.OperationalError("database or disk is full"))
    assert not store.is_unavailable(sqlite3.OperationalError("too many SQL variables"))
    assert not store.is_unavailable(ValueError("year 0202"))
