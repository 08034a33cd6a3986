"""The relay's two calls to the store on every batch: the read of the next notifications, and
the record of its position once a batch is acked.

On PostgreSQL (:class:`PostgresLog`) both go over one connection of the relay's own, opened
lazily in autocommit mode and used from the event loop (psycopg's asynchronous connection): a
read is one prepared ``SELECT``, a record one prepared upsert of the tracking row that moves it
forward only (the library's own statement), each a single round trip. Through the library's
recorders each call was a hop to a worker thread and back, a connection borrowed from the pool
and given back, and for the record a transaction (``BEGIN``, the upsert, ``COMMIT``): measured
in-process on PostgreSQL, about 230 µs of CPU for a read of one event and 270 µs for a record;
here about 30 µs for the read and 60 µs for the record (65-90 µs each with a new cursor per
statement and the statement composed at every call). At ordinary rates the relay publishes a
batch of one or two events per commit, so these calls were a third of its CPU per command.

Otherwise (SQLite, or a tracking table the library keeps one row per position in)
:class:`RecorderLog` makes the same calls through the store's recorders in a worker thread.

What either records is the same row the library's tracking recorder reads
(``max_tracking_id``), so the position survives a change of one for the other. A failure is
raised as the library's :class:`~eventsourcing.persistence.PersistenceError` (or one of its
subclasses), as the recorders raise it; the connection that failed is closed and the next call
opens a new one.

A frozen server (stopped, or its host paused: the connection stays open and nothing answers)
would leave a call on :class:`PostgresLog` waiting for ever: the server's ``statement_timeout``
is the server's to apply, TCP keepalives are answered by the host's kernel, and a SIGSTOPped
server's kernel even acknowledges what is sent. So each call has a client-side limit
(``TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS``): opening the connection is bounded by
``asyncio.timeout`` (and libpq's ``connect_timeout``); a statement not answered in time has its
connection's socket shut down (:func:`abort`), on which libpq fails the statement at once as if
the server had closed the connection, and the call raises the library's ``OperationalError``.
Cancelling the awaiting coroutine instead would hand the statement to psycopg's cancellation,
which asks the frozen server to cancel it and then waits for an answer, up to ten more seconds,
with a warning logged for each. The server sees the connection closed once it runs again and
ends its session; a statement it had received runs to its end there (a read, or a record that
only moves the position forward: either is harmless).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread
import psycopg
from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    Notification,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared.eventstore import EventStore
from shared.eventstore.postgres import Deadline, abort, deadline
from shared.eventstore.store import postgres_conninfo

APPLICATION_NAME = "tutorpulse-relay"
"""How the relay's connection for its reads and records is named in ``pg_stat_activity``."""


class RelayLog(Protocol):
    async def read(
        self, after: int, limit: int, until: int | None = None
    ) -> Sequence[Notification]:
        """Up to ``limit`` notifications after ``after`` (and up to ``until``), in order."""

    async def record(self, position: int) -> None:
        """Record ``position`` as relayed: refused (IntegrityError) only if the recorded
        position is below it afterwards (one at or past it is left as it is)."""

    async def recorded(self) -> int:
        """The position recorded as relayed (0 if none)."""

    async def head(self) -> int:
        """The last notification id in the log (0 if none)."""

    async def close(self) -> None: ...


class RecorderLog:
    """Through the store's recorders, in a worker thread."""

    def __init__(self, store: EventStore, tracking: TrackingRecorder, name: str) -> None:
        self._store = store
        self._tracking = tracking
        self._name = name

    async def read(
        self, after: int, limit: int, until: int | None = None
    ) -> Sequence[Notification]:
        return await anyio.to_thread.run_sync(self._read, after, limit, until)

    async def record(self, position: int) -> None:
        await anyio.to_thread.run_sync(self._record, position)

    async def recorded(self) -> int:
        return await anyio.to_thread.run_sync(self._recorded)

    async def head(self) -> int:
        return await anyio.to_thread.run_sync(self._head)

    async def close(self) -> None:
        pass

    def _read(self, after: int, limit: int, until: int | None) -> Sequence[Notification]:
        return self._store.recorder.select_notifications(
            start=after, limit=limit, stop=until, inclusive_of_start=False
        )

    def _recorded(self) -> int:
        return self._tracking.max_tracking_id(self._name) or 0

    def _head(self) -> int:
        return self._store.recorder.max_notification_id() or 0

    def _record(self, position: int) -> None:
        try:
            self._tracking.insert_tracking(Tracking(self._name, position))
        except IntegrityError:  # refused unless it moves forward: fine if it is there already
            if (self._tracking.max_tracking_id(self._name) or 0) < position:
                raise


class PostgresLog:
    """On a PostgreSQL connection of its own, from the event loop (see the module)."""

    def __init__(
        self,
        conninfo: str,
        recorder: PostgresApplicationRecorder,
        tracking: PostgresTrackingRecorder,
        name: str,
        timeout: float,
    ) -> None:
        """``timeout``: the longest a call waits for the server (see the module)."""
        self._conninfo = conninfo
        self._name = name
        self._timeout = timeout
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._cursor: psycopg.AsyncCursor[tuple[Any, ...]] | None = None
        events = sql.SQL("{}.{}").format(
            sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)
        )
        self._composed = {
            "select": sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(events),
            "select_until": sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(events),
            "head": sql.SQL("SELECT max(notification_id) FROM {}").format(events),
            # The library's: inserts the row, or moves it forward, and returns the position
            # only if it did either.
            "upsert": tracking.insert_tracking_statement,
            "recorded": tracking.max_tracking_id_statement,
        }
        self._statements: dict[str, bytes] = {}
        """Each statement as bytes for its connection: psycopg composes a ``Composed`` again
        at every execute, and caches what it makes of a ``bytes`` query."""

    async def read(
        self, after: int, limit: int, until: int | None = None
    ) -> Sequence[Notification]:
        rows = await (
            self._fetch("select", (after, limit))
            if until is None
            else self._fetch("select_until", (after, until, limit))
        )
        return [
            Notification(
                id=notification_id,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            for notification_id, originator_id, version, topic, state in rows
        ]

    async def record(self, position: int) -> None:
        moved = await self._fetch(
            "upsert", {"application_name": self._name, "notification_id": position}
        )
        if moved:
            return
        if await self.recorded() < position:
            raise IntegrityError(f"the relay's position was not recorded at {position}")

    async def recorded(self) -> int:
        rows = await self._fetch("recorded", (self._name,))
        return int(rows[0][0] or 0) if rows else 0

    async def head(self) -> int:
        rows = await self._fetch("head", ())
        return int(rows[0][0] or 0) if rows else 0

    async def close(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def _fetch(
        self, statement: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        bound = Deadline()
        try:
            cursor = self._cursor
            if cursor is None or cursor.closed or cursor.connection.closed:
                async with asyncio.timeout(self._timeout):
                    cursor = await self._connect()
            # Not answered in time: its socket is shut down, and the statement fails at once.
            connection = cursor.connection
            with deadline(self._timeout, lambda: abort(connection)) as bound:
                await cursor.execute(self._statements[statement], params, prepare=True)
                return await cursor.fetchall()
        except psycopg.Error as error:
            await self.close()
            if bound.missed:
                raise OperationalError(self._unanswered()) from error
            raise _persistence_error(error) from error
        except TimeoutError as error:  # the connection was not opened in time
            await self.close()
            raise OperationalError(self._unanswered()) from error
        except BaseException:  # cancelled mid-statement: the connection's state is unknown
            await self.close()
            raise

    def _unanswered(self) -> str:
        return f"the event store did not answer within {self._timeout:g} s"

    async def _connect(self) -> psycopg.AsyncCursor[tuple[Any, ...]]:
        """A new connection, its one cursor (reused: making a cursor per statement cost as
        much CPU as the statement's own client work) and the statements' bytes."""
        await self.close()
        connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._statements = {
            name: statement.as_bytes(connection) for name, statement in self._composed.items()
        }
        self._connection, self._cursor = connection, connection.cursor()
        return self._cursor


_ERRORS: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
)


def _persistence_error(error: psycopg.Error) -> PersistenceError:
    """The library's exception for a psycopg one, as its recorders map them."""
    for psycopg_class, ours in _ERRORS:
        if isinstance(error, psycopg_class):
            return ours(str(error))
    return PersistenceError(str(error))


def relay_log(
    store: EventStore, tracking: TrackingRecorder, name: str, timeout: float = 3.0
) -> RelayLog:
    """A connection of its own on PostgreSQL (each call waiting ``timeout`` seconds at most for
    the server), the recorders in a worker thread otherwise."""
    recorder = store.recorder
    if (
        isinstance(recorder, PostgresApplicationRecorder)
        and isinstance(tracking, PostgresTrackingRecorder)
        and tracking.datastore.single_row_tracking
    ):
        conninfo = make_conninfo(postgres_conninfo(store.env), application_name=APPLICATION_NAME)
        return PostgresLog(conninfo, recorder, tracking, name, timeout)
    return RecorderLog(store, tracking, name)
