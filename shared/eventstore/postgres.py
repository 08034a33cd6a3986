"""The eventsourcing library's PostgreSQL factory, with the connection parameters it cannot set.

eventsourcing 9.5 builds its psycopg pool itself and exposes a fixed set of ``POSTGRES_*``
variables. Its ``POSTGRES_CONNECT_TIMEOUT`` is how long a call waits for a pooled connection;
it does not reach libpq, so opening a connection to a server that does not answer waits for
psycopg's default of 130 s, and there is no statement timeout at all. This factory adds what a
service needs to fail fast, as libpq parameters of every connection the pool opens:

- ``connect_timeout``: the longest opening one connection may take;
- ``options=-c statement_timeout=…``: the server cancels a statement running longer;
- TCP keepalives and ``tcp_user_timeout``: a connection whose peer vanished from the network,
  idle or with a statement unacknowledged, is given up in seconds.

None of these covers a server whose processes are frozen (stopped, or stuck) while its
host's kernel still answers TCP: the statement timeout is the server's to apply, and keepalives
and what is sent are acknowledged. So every connection the pool lends is also watched from the
client (:class:`AnswerLimit`, ``POSTGRES_ANSWER_TIMEOUT``): one held longer than that, the
pre-ping included, has its socket shut down, on which libpq fails the waiting call at once
(a cancel request, psycopg's way, would wait on the frozen server too), and the call raises
:class:`Unanswered`, an ``OperationalError`` (HTTP 503). psycopg, its pool and libpq have no
client-side limit on a statement; the relay bounds its own connection the same way.

It also turns off the library's own retries (ten attempts, 0.2 s apart, of every recorder call
that failed with an OperationalError or InterfaceError): they multiplied each timeout by ten,
so a call to a stopped server took 30 s instead of 3, and they re-ran an insert whose commit may
already have succeeded. A call now makes one attempt; the pool's pre-ping replaces connections
that died meanwhile, and callers report the failure (HTTP 503 with ``Retry-After``) or retry
under their own policy (the relay).

Selected by :func:`shared.eventstore.store.store_env` as the ``PERSISTENCE_MODULE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from weakref import WeakKeyDictionary, WeakSet

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
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
ANSWER_TIMEOUT = "POSTGRES_ANSWER_TIMEOUT"
"""Seconds (float) a lent connection may be held waiting; 0: no limit. Read by this factory."""

KEEPALIVES: Mapping[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
"""A peer that stops answering on the network is given up after about 11 s."""
TCP_USER_TIMEOUT_MS = 11_000
"""libpq ``tcp_user_timeout``: data the peer's host has not acknowledged for 11 s (it froze or
vanished mid-statement, when keepalives are not sent) drops the connection, as the keepalives
do for an idle one."""


def libpq_parameters(settings: Mapping[str, str]) -> dict[str, Any]:
    """The libpq connection parameters for the store's settings (see ``store_env``)."""
    parameters: dict[str, Any] = dict(KEEPALIVES)
    parameters["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
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
        self.answer_limit = answer_within(pool, float(self.env.get(ANSWER_TIMEOUT) or 0))
        if self.answer_limit is not None:
            self.datastore.get_connection = self.answer_limit.told(  # type: ignore[method-assign,assignment]
                self.datastore.get_connection
            )

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.answer_limit is not None:
                self.answer_limit.close()


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
            if unanswered(connection):
                # The server is silent, not gone: pinging the idle connections would wait on
                # it once more each. They are replaced without a word sent to it.
                pool.drain()
            else:
                pool.check()
            raise

    pool.putconn = putconn  # type: ignore[method-assign,assignment]
    return check


class Unanswered(OperationalError):
    """PostgreSQL did not answer on a connection within the answer limit (see the module)."""


_UNANSWERED: WeakSet[Connection[Any]] = WeakSet()
"""Connections whose socket an :class:`AnswerLimit` shut down."""


def unanswered(connection: Connection[Any]) -> bool:
    """Whether ``connection`` was given up on for want of an answer."""
    return connection in _UNANSWERED


def abort(connection: Connection[Any] | psycopg.AsyncConnection[Any] | None) -> None:
    """Shut down the socket of ``connection`` (both ways), from any thread: a call waiting on it
    fails at once (libpq reads the end of the stream: "server closed the connection
    unexpectedly") and the connection is broken for good, so its pool discards it. Closing the
    descriptor instead would not wake a thread or event loop polling it."""
    if connection is None or connection.closed:
        return
    with contextlib.suppress(OSError, psycopg.Error):
        fd = connection.pgconn.socket
        # fromfd duplicates the descriptor: shutdown acts on the socket, close on the copy.
        with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)


class Deadline:
    """Whether a wait bounded by :func:`deadline` ran out (and was given up)."""

    missed = False


@contextlib.contextmanager
def deadline(seconds: float, give_up: Callable[[], None]) -> Iterator[Deadline]:
    """On the running event loop: unless the block is over within ``seconds``, call
    ``give_up`` (an :func:`abort` of the connection the block waits on, which fails the wait at
    once) and mark the deadline missed. The event loop's counterpart of :class:`AnswerLimit`,
    for a connection used from the loop or a call handed to a thread."""
    bound = Deadline()

    def missed() -> None:
        bound.missed = True
        give_up()

    timer = asyncio.get_running_loop().call_later(seconds, missed)
    try:
        yield bound
    finally:
        timer.cancel()


class AnswerLimit:
    """The longest a connection lent by a pool may be held: from the pre-ping to its return,
    ``timeout`` seconds; past it, its socket is shut down (:func:`abort`). One thread per pool
    looks at the lent connections a few times a second while any are lent (and for a while
    after: starting a thread per call would cost more than the call), so lending and returning
    cost a dictionary entry each, and a connection is given up on within a quarter of a second
    (at most) after its limit."""

    IDLE_EXIT = 30.0
    """Seconds without a lent connection after which the thread ends (a new one starts with the
    next lending)."""

    def __init__(self, timeout: float, name: str) -> None:
        self.timeout = timeout
        self.name = name
        self._tick = min(0.25, timeout / 4)
        self._lock = threading.Lock()
        self._lent: dict[Connection[Any], tuple[float, int]] = {}
        """Each lent connection's deadline and the thread holding it."""
        self._unanswered_threads: set[int] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_given_up = -timeout

    def lend(self, connection: Connection[Any]) -> None:
        deadline = time.monotonic() + self.timeout
        with self._lock:
            self._lent[connection] = (deadline, threading.get_ident())
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._watch, name=f"answer-limit-{self.name}", daemon=True
                )
                self._thread.start()

    def returned(self, connection: Connection[Any]) -> None:
        with self._lock:
            self._lent.pop(connection, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self._tick)
            now = time.monotonic()
            with self._lock:
                if self._lent:
                    idle_since = now
                elif self._closed or now - idle_since >= self.IDLE_EXIT:
                    self._thread = None
                    return
                # Under the lock: a connection returned and lent again meanwhile is not hit.
                for connection, (deadline, holder) in list(self._lent.items()):
                    if deadline <= now:
                        del self._lent[connection]
                        _UNANSWERED.add(connection)
                        self._unanswered_threads.add(holder)
                        abort(connection)
                        self._last_given_up = now

    def silent(self) -> bool:
        """Whether a connection was given up on within the last ``timeout`` seconds."""
        return time.monotonic() - self._last_given_up < self.timeout

    def unanswered_here(self) -> bool:
        """Whether this thread's connection was given up on since it last asked (and forget)."""
        ident = threading.get_ident()
        with self._lock:
            if ident in self._unanswered_threads:
                self._unanswered_threads.discard(ident)
                return True
        return False

    def told(
        self, get_connection: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> Callable[[], contextlib.AbstractContextManager[Any]]:
        """The eventsourcing datastore's ``get_connection``, raising :class:`Unanswered`, not
        "server closed the connection unexpectedly", when this limit gave the call up."""
        limit = self

        @contextlib.contextmanager
        def bounded() -> Iterator[Any]:
            limit.unanswered_here()  # what an earlier call left is not this call's
            try:
                with get_connection() as connection:
                    yield connection
            except (OperationalError, InterfaceError) as error:
                if limit.unanswered_here():
                    raise Unanswered(
                        f"PostgreSQL did not answer within {limit.timeout:g} s"
                    ) from error
                raise

        return bounded


def answer_within(pool: ConnectionPool[Any], timeout: float) -> AnswerLimit | None:
    """Bound every lending of ``pool`` (and its pre-ping, and the pings of ``pool.check()``) to
    ``timeout`` seconds (see :class:`AnswerLimit`); ``None`` and nothing changed for 0. Call it
    once the pool's ``check`` is set."""
    if timeout <= 0:
        return None
    limit = AnswerLimit(timeout, pool.name)
    get, put, check = pool.getconn, pool.putconn, pool._check

    def getconn(timeout: float | None = None) -> Connection[Any]:
        connection: Connection[Any] = get(timeout)
        limit.lend(connection)
        return connection

    def putconn(connection: Connection[Any]) -> None:
        limit.returned(connection)
        put(connection)

    def pinged(connection: Connection[Any]) -> None:
        if limit.silent():
            # ``pool.check()`` pings the idle connections one after the other: while the
            # server is silent, each would wait the limit in turn. They are let go instead.
            abort(connection)
            raise Unanswered(f"PostgreSQL did not answer within {limit.timeout:g} s")
        limit.lend(connection)
        try:
            ConnectionPool.check_connection(connection)
        finally:
            limit.returned(connection)

    pool.getconn = getconn  # type: ignore[method-assign]
    pool.putconn = putconn  # type: ignore[method-assign,assignment]
    pool.check_connection = pinged  # type: ignore[method-assign,assignment]
    if check is not None:

        def checked(connection: Connection[Any]) -> None:
            limit.lend(connection)
            try:
                check(connection)
            finally:
                limit.returned(connection)

        pool._check = checked
    return limit
