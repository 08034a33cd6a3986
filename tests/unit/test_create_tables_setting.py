"""``TUTORPULSE_CREATE_TABLES=false`` on SQLite: the stores create nothing, open tables that
exist, and name the ones that do not (PostgreSQL, with the row-only role:
tests/infra/test_migrate.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import Tracking

from shared.eventstore import EventStore, EventStoreSettings
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.schema import STARTUP_FAILURE, MissingTables
from shared.settings import load


def environment(tmp_path: Path, create: bool) -> dict[str, str]:
    return {
        "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
        "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
        "TUTORPULSE_CREATE_TABLES": "yes" if create else "no",
    }


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows.fetchall()}


def test_the_setting_defaults_to_creating_tables() -> None:
    assert load(EventStoreSettings, {}).schema.create_tables
    assert load(ReadStoreSettings, {}).schema.create_tables


def test_without_tables_each_store_names_what_is_missing_and_creates_nothing(
    tmp_path: Path,
) -> None:
    env = environment(tmp_path, create=False)
    with pytest.raises(MissingTables) as events_missing:
        EventStore(load(EventStoreSettings, env))
    assert events_missing.value.tables == ("stored_events",)
    assert events_missing.value.code == STARTUP_FAILURE
    assert "python -m services.migrate" in str(events_missing.value)
    with pytest.raises(MissingTables) as read_missing:
        open_read_store(load(ReadStoreSettings, env))
    assert read_missing.value.tables == ("rm_meta",)
    assert sqlite_tables(tmp_path / "events.sqlite") == set()
    assert sqlite_tables(tmp_path / "read.sqlite") == set()


def test_tables_made_once_are_opened_without_creating_any(tmp_path: Path) -> None:
    made = EventStore(load(EventStoreSettings, environment(tmp_path, create=True)))
    made.close()  # the events table only: the tracking table is made by whoever tracks
    store = EventStore(load(EventStoreSettings, environment(tmp_path, create=False)))
    try:
        assert store.position == 0
        with pytest.raises(MissingTables) as tracking_missing:
            store.tracking()
        assert tracking_missing.value.tables == ("tracking",)
    finally:
        store.close()

    creating = EventStore(load(EventStoreSettings, environment(tmp_path, create=True)))
    creating.tracking()
    creating.close()
    store = EventStore(load(EventStoreSettings, environment(tmp_path, create=False)))
    try:
        tracking = store.tracking()
        tracking.insert_tracking(Tracking("relay", 3))
        assert tracking.max_tracking_id("relay") == 3
    finally:
        store.close()

    open_read_store(load(ReadStoreSettings, environment(tmp_path, create=True))).close()
    read = open_read_store(load(ReadStoreSettings, environment(tmp_path, create=False)))
    try:
        assert read.ensure_ready() == 1 and read.watermark() == 0
    finally:
        read.close()
