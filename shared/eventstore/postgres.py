"""The eventsourcing library's PostgreSQL factory, with the connection parameters it cannot set.

eventsourcing 9.5 builds its psycopg pool itself and exposes a fixed set of ``POSTGRES_*``
variables. Its ``POSTGRES_CONNECT_TIMEOUT`` is how long a call waits for a pooled connection;
it does not reach libpq, so opening a connection to a server that does not answer waits for
psycopg's default of 130 s, and there is no statement timeout at all. This factory adds what a
service needs to fail fast, as libpq parameters of every connection the pool opens:

- ``connect_timeout``: the longest opening one connection may take;
- ``options=-c statement_timeout=…``: the server cancels a statement running longer;
- TCP keepalives: a connection whose peer vanished from the network is noticed in seconds.

It also turns off the library's own retries (ten attempts, 0.2 s apart, of every recorder call
that failed with an OperationalError or InterfaceError): they multiplied each timeout by ten,
so a call to a stopped server took 30 s instead of 3, and they re-ran an insert whose commit may
already have succeeded. A call now makes one attempt; the pool's pre-ping replaces connections
that died meanwhile, and callers report the failure (HTTP 503 with ``Retry-After``) or retry
under their own policy (the relay).

Selected by :func:`shared.eventstore.store.store_env` as the ``PERSISTENCE_MODULE``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.postgres import PostgresFactory as LibraryPostgresFactory
from eventsourcing.utils import Environment
from psycopg import Connection
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

STATEMENT_TIMEOUT = "POSTGRES_STATEMENT_TIMEOUT"
"""Seconds (float); 0 leaves the server's own setting. Read by this factory only."""
LIBPQ_CONNECT_TIMEOUT = "POSTGRES_LIBPQ_CONNECT_TIMEOUT"
"""Whole seconds, at least 2 (libpq's minimum). Read by this factory only."""

KEEPALIVES: Mapping[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
"""A peer that stops answering on the network is given up after about 11 s."""


def libpq_parameters(settings: Mapping[str, str]) -> dict[str, Any]:
    """The libpq connection parameters for the store's settings (see ``store_env``)."""
    parameters: dict[str, Any] = dict(KEEPALIVES)
    connect_timeout = settings.get(LIBPQ_CONNECT_TIMEOUT)
    if connect_timeout:
        parameters["connect_timeout"] = max(2, int(float(connect_timeout)))
    statement_timeout = float(settings.get(STATEMENT_TIMEOUT) or 0)
    if statement_timeout > 0:
        parameters["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
    return parameters


R = TypeVar("R", bound=type)

_RETRIED_METHODS = (
    "insert_events",
    "select_events",
    "select_notifications",
    "max_notification_id",
    "insert_tracking",
    "max_tracking_id",
    "has_tracking_id",
)


def _single_attempt(recorder_class: R) -> R:
    """A subclass of a library recorder whose calls make one attempt: each method the library
    wrapped in ``eventsourcing.utils.retry`` is replaced by the function it wrapped."""
    namespace: dict[str, Any] = {"__module__": __name__}
    for name in _RETRIED_METHODS:
        method = getattr(recorder_class, name, None)
        code = getattr(method, "__code__", None)
        if code is not None and code.co_name == "retry_decorator":
            namespace[name] = method.__wrapped__  # type: ignore[union-attr]
    return type(recorder_class.__name__, (recorder_class,), namespace)  # type: ignore[return-value]


class PostgresFactory(LibraryPostgresFactory):
    aggregate_recorder_class = _single_attempt(PostgresAggregateRecorder)
    application_recorder_class = _single_attempt(PostgresApplicationRecorder)
    tracking_recorder_class = _single_attempt(PostgresTrackingRecorder)
    process_recorder_class = _single_attempt(PostgresProcessRecorder)

    def __init__(self, env: Environment | Mapping[str, str] | None) -> None:
        super().__init__(env)
        # The pool opens its connections lazily, with these keyword arguments.
        pool = self.datastore.pool
        opened_with = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        pool.kwargs = {
            **opened_with,
            **libpq_parameters(
                {
                    key: value
                    for key in (STATEMENT_TIMEOUT, LIBPQ_CONNECT_TIMEOUT)
                    if (value := self.env.get(key)) is not None
                }
            ),
        }
        if self.datastore.pre_ping:
            pool._check = _sweeping_check(pool)


PRE_PING_AFTER = 1.0
"""Seconds since a connection last went back to the pool in good order after which the pre-ping
checks it again before lending it. A connection lent again sooner (the common case under load)
is trusted: pinging it before every use doubled the round trips of a command. A server that
restarts within this second can still fail the one request that used the connection, which then
answers 503 like any outage."""


def _sweeping_check(pool: ConnectionPool[Any]) -> Callable[[Connection[Any]], None]:
    """The pre-ping of a connection idle for :data:`PRE_PING_AFTER`, and when it finds a dead
    connection, a check of every idle one.

    After PostgreSQL restarted, every pooled connection is dead. psycopg_pool discards one dead
    connection per try and waits 1 s, 2 s, 4 s… between tries, so the first requests would run
    out of time one after the other; checking the whole pool at the first dead one replaces them
    all at once, and the request that found it gets a new connection after the first wait."""
    returned: WeakKeyDictionary[Connection[Any], float] = WeakKeyDictionary()
    lock = threading.Lock()
    put_back = pool.putconn

    def putconn(connection: Connection[Any]) -> None:
        # Noted here rather than in a ``reset`` callback: with one, psycopg_pool hands every
        # returned connection to a worker thread (a thread hop and a lock handover per query,
        # a tenth of the command service's CPU under load) and lends it again only after that.
        if not connection.closed and connection.info.transaction_status == TransactionStatus.IDLE:
            with lock:
                returned[connection] = time.monotonic()
        put_back(connection)

    def check(connection: Connection[Any]) -> None:
        with lock:
            last = returned.pop(connection, None)
        if last is not None and time.monotonic() - last < PRE_PING_AFTER:
            return
        try:
            ConnectionPool.check_connection(connection)
        except Exception:
            pool.check()
            raise

    pool.putconn = putconn  # type: ignore[method-assign,assignment]
    return check
