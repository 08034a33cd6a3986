"""The event store's connection pool on PostgreSQL: a connection given back in good order is
available again at once and lent again without a pre-ping; one given back in a broken state is
pinged before it is lent again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import Connection
from psycopg_pool import ConnectionPool

from shared.eventstore import EventStore, EventStoreSettings
from shared.settings import load as load_settings
from tests.support.servers import PostgresServer


@pytest.fixture
def store(pg: PostgresServer) -> Iterator[EventStore]:
    events = EventStore(load_settings(EventStoreSettings, pg.env()))
    pool_of(events).open(wait=True, timeout=10)
    yield events
    events.close()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[Connection[Any]]:
    """Every connection the pool's pre-ping checks."""
    checked: list[Connection[Any]] = []
    check = ConnectionPool.check_connection

    def counted(connection: Connection[Any]) -> None:
        checked.append(connection)
        check(connection)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return checked


def pool_of(store: EventStore) -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = store.recorder.datastore.pool  # type: ignore[attr-defined]
    return pool


def test_a_connection_given_back_is_available_again_at_once(store: EventStore) -> None:
    pool = pool_of(store)
    available = pool.get_stats()["pool_available"]
    for _ in range(50):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
            assert pool.get_stats()["pool_available"] == available - 1
        # Not handed to a worker thread to be put back later: the next caller can have it now.
        assert pool.get_stats()["pool_available"] == available


def test_a_connection_used_again_within_a_second_is_not_pinged(
    store: EventStore, pings: list[Connection[Any]]
) -> None:
    pool = pool_of(store)
    lent = [pool.getconn() for _ in range(pool.get_stats()["pool_available"])]
    for conn in lent:
        conn.execute("SELECT 1")
        conn.commit()
        pool.putconn(conn)
    pings.clear()
    for _ in range(20):
        assert store.recorder.max_notification_id() is None
    assert pings == []


def test_a_connection_given_back_inside_a_transaction_is_pinged_before_reuse(
    store: EventStore, pings: list[Connection[Any]]
) -> None:
    pool = pool_of(store)
    conn = pool.getconn()
    conn.execute("BEGIN")  # a transaction left open, as a failed caller might
    conn.execute("SELECT 1")
    pool.putconn(conn)  # the pool rolls it back; it was not given back in good order
    pings.clear()
    lent = [pool.getconn() for _ in range(pool.get_stats()["pool_available"])]
    try:
        assert conn in lent
        assert conn in pings
    finally:
        for each in lent:
            pool.putconn(each)
