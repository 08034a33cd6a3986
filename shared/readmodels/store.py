"""Where read models live: SQLite by default, PostgreSQL in production.

Every read model is a set of JSON documents (``rm_docs``) plus the session log rows
(``rm_log``). Exactly-once application is kept per aggregate: ``rm_versions`` holds the last
version of each aggregate applied, in the same transaction as the documents it changed, so a
redelivered event is recognised and skipped, and an event that overtook its predecessor is
refused until the predecessor is in. An event that was dead-lettered counts as in for its
aggregate's version (so the aggregate's later events apply) and is remembered in
``rm_skipped``, so that replaying it from the dead-letter stream applies it once, out of band.

Tables carry a generation number. A rebuild fills the next generation while queries keep
reading the current one, then switches ``rm_meta.generation`` in one transaction.

``TUTORPULSE_READ_STORE``          ``sqlite`` (default) or ``postgres``
``TUTORPULSE_READ_SQLITE_PATH``    default ``var/readmodels.sqlite``
``TUTORPULSE_READ_POSTGRES_HOST``  with ``_PORT``, ``_DBNAME``, ``_USER``, ``_PASSWORD``; each
                                   defaults to the event store's ``TUTORPULSE_POSTGRES_*`` value
``TUTORPULSE_READ_POSTGRES_CONNECT_TIMEOUT``  seconds to connect, and to wait for a pooled
                                   connection (3); ``_STATEMENT_TIMEOUT`` seconds per statement
                                   (5, 0 keeps the server's); ``_PRE_PING`` check a pooled
                                   connection before lending it (yes); ``_CONN_MAX_AGE`` seconds
                                   before a connection is replaced (1800). Each defaults to the
                                   event store's ``TUTORPULSE_POSTGRES_*`` value, then to the value
                                   shown. Connections carry the event store's libpq parameters
                                   (``shared.eventstore.postgres.libpq_parameters``).
"""

from __future__ import annotations

import enum
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec
import psycopg
import structlog
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from shared.eventstore.postgres import LIBPQ_CONNECT_TIMEOUT, STATEMENT_TIMEOUT, libpq_parameters
from shared.http.problems import store_unavailable
from shared.settings import flag

log = structlog.get_logger(__name__)

Doc = dict[str, Any]

_encoder = msgspec.json.Encoder(order="sorted")
_decode = msgspec.json.decode


def _encode(value: Any) -> str:
    return _encoder.encode(value).decode()


@dataclass(frozen=True)
class StoredDoc:
    kind: str
    key: str
    centre_id: str
    version: int
    doc: Doc


@dataclass(frozen=True)
class LogRow:
    notification_id: int
    session_id: str
    centre_id: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: str
    event_type: str
    actor_id: str
    actor_role: str
    event: Doc


def _chunks(items: list[str], size: int = 400) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _docs_among(cursor: Cursor, sql: Callable[[str], str], table: str, kind: str,
                keys: Sequence[str]) -> list[StoredDoc]:
    """The stored documents of ``kind`` among ``keys``, a few hundred keys per query."""
    found = []
    for chunk in _chunks(list(keys)):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(sql(f"SELECT key, centre_id, version, doc FROM {table} WHERE kind = ? AND key IN ({marks})"),
                       (kind, *chunk))
        found += [StoredDoc(kind, row[0], row[1], int(row[2]), _decode(row[3])) for row in cursor.fetchall()]
    return found


class Cursor(Protocol):
    def execute(self, query: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, query: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SkipResult(enum.Enum):
    """What recording a dead-lettered event did to its aggregate."""

    SKIPPED = "skipped"
    """Counted as in: the aggregate's later events apply."""
    PENDING = "pending"
    """An earlier event of the aggregate is missing too: remembered, the version unchanged."""
    APPLIED = "applied"
    """The event is in the read models already (another replica applied it)."""


class Transaction:
    """One atomic unit of read-model changes in one generation."""

    def __init__(self, cursor: Cursor, generation: int, placeholder: str, lock: str,
                 key_lock: str | None) -> None:
        self._cursor = cursor
        self.generation = generation
        self._p = placeholder
        self._lock = lock
        self._key_lock = key_lock

    def _lock_key(self, name: str) -> None:
        """Serialise writers of one document or aggregate, even before its row exists."""
        self._lock_keys([name])

    def _lock_keys(self, names: Sequence[str]) -> None:
        if self._key_lock is not None and names:
            # One statement, in one order for every batch. A batch that needs a key it did not
            # prefetch locks it later, so two batches can still deadlock: PostgreSQL then aborts
            # one, which is retried (``transient_errors``).
            self._cursor.execute(self._key_lock, (sorted(f"{self.generation}:{name}" for name in names),))

    def aggregate_versions(self, aggregate_ids: Sequence[str]) -> dict[str, int]:
        """The applied version of many aggregates (0 for unknown ones), locking them all."""
        self._lock_keys([f"aggregate:{a}" for a in aggregate_ids])
        found = {a: 0 for a in aggregate_ids}
        for chunk in _chunks(list(aggregate_ids)):
            marks = ", ".join("?" * len(chunk))
            self._cursor.execute(self._q(
                f"SELECT aggregate_id, version FROM rm_versions_{{g}} WHERE aggregate_id IN ({marks})"), chunk)
            found.update({row[0]: int(row[1]) for row in self._cursor.fetchall()})
        return found

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, StoredDoc | None]:
        """Many documents of one kind at once (``None`` for missing ones), locking them all."""
        self._lock_keys([f"{kind}:{k}" for k in keys])
        found: dict[str, StoredDoc | None] = dict.fromkeys(keys)
        found.update({d.key: d for d in _docs_among(self._cursor, self._q, "rm_docs_{g}", kind, keys)})
        return found

    def _q(self, sql: str) -> str:
        return sql.replace("{g}", str(self.generation)).replace("?", self._p)

    def aggregate_version(self, aggregate_id: str) -> int:
        self._lock_key(f"aggregate:{aggregate_id}")
        self._cursor.execute(self._q(f"SELECT version FROM rm_versions_{{g}} WHERE aggregate_id = ?{self._lock}"),
                             (aggregate_id,))
        row = self._cursor.fetchone()
        return int(row[0]) if row else 0

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        self._cursor.executemany(self._q(
            "INSERT INTO rm_versions_{g} (aggregate_id, version) VALUES (?, ?) "
            "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"), versions)

    def get(self, kind: str, key: str) -> StoredDoc | None:
        self._lock_key(f"{kind}:{key}")
        self._cursor.execute(self._q(
            f"SELECT centre_id, version, doc FROM rm_docs_{{g}} WHERE kind = ? AND key = ?{self._lock}"),
            (kind, key))
        row = self._cursor.fetchone()
        if row is None:
            return None
        return StoredDoc(kind, key, row[0], int(row[1]), _decode(row[2]))

    def put_many(self, docs: Sequence[StoredDoc]) -> None:
        self._cursor.executemany(self._q(
            "INSERT INTO rm_docs_{g} (kind, key, centre_id, version, doc) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, doc = excluded.doc"),
            [(d.kind, d.key, d.centre_id, d.version, _encode(d.doc))
             for d in docs])

    def make_current(self) -> None:
        """Make this transaction's generation the one queries read, when it commits."""
        self._cursor.execute(self._q("UPDATE rm_meta SET value = {g} WHERE name = 'generation'"))

    def skip(self, aggregate_id: str, version: int, notification_id: int, event_type: str,
             reason: str) -> SkipResult:
        """Record that this event of the aggregate was dead-lettered. If it is the next version
        of its aggregate, the aggregate's version moves past it (and past later versions that
        were dead-lettered before it), so the aggregate's later events apply."""
        current = self.aggregate_version(aggregate_id)  # locks the aggregate
        if current >= version and not self.is_skipped(aggregate_id, version):
            return SkipResult.APPLIED
        self._cursor.execute(self._q(
            "INSERT INTO rm_skipped_{g} (aggregate_id, version, notification_id, event_type, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (aggregate_id, version) DO NOTHING"),
            (aggregate_id, version, notification_id, event_type, reason))
        if current != version - 1:
            return SkipResult.SKIPPED if current >= version else SkipResult.PENDING
        self.pass_skipped(aggregate_id, current)
        return SkipResult.SKIPPED

    def pass_skipped(self, aggregate_id: str, current: int) -> int:
        """Move the aggregate's version from ``current`` past the dead-lettered versions right
        after it; returns the version reached."""
        reached = self.past_skipped({aggregate_id: current})[aggregate_id]
        if reached != current:
            self.set_aggregate_versions([(aggregate_id, reached)])
        return reached

    def past_skipped(self, versions: Mapping[str, int]) -> dict[str, int]:
        """For each aggregate at the given version, the version it reaches by passing the
        dead-lettered versions right after it (recorded while an earlier event was missing),
        in a query per few hundred aggregates."""
        reached = dict(versions)
        for chunk in _chunks(sorted(versions)):
            marks = ", ".join("?" * len(chunk))
            self._cursor.execute(self._q(
                f"SELECT aggregate_id, version FROM rm_skipped_{{g}} WHERE aggregate_id IN ({marks}) "
                "ORDER BY aggregate_id, version"), chunk)
            for aggregate_id, version in self._cursor.fetchall():
                if int(version) == reached[aggregate_id] + 1:
                    reached[aggregate_id] = int(version)
        return reached

    def is_skipped(self, aggregate_id: str, version: int) -> bool:
        self._cursor.execute(self._q(
            "SELECT 1 FROM rm_skipped_{g} WHERE aggregate_id = ? AND version = ?"), (aggregate_id, version))
        return self._cursor.fetchone() is not None

    def skipped_between(self, aggregate_id: str, after: int, through: int) -> int:
        """How many versions of the aggregate in ``(after, through]`` were dead-lettered."""
        self._cursor.execute(self._q(
            "SELECT COUNT(*) FROM rm_skipped_{g} WHERE aggregate_id = ? AND version > ? AND version <= ?"),
            (aggregate_id, after, through))
        row = self._cursor.fetchone()
        return int(row[0]) if row else 0

    def forget_skip(self, aggregate_id: str, version: int) -> None:
        """The dead-lettered event was replayed or discarded."""
        self._cursor.execute(self._q("DELETE FROM rm_skipped_{g} WHERE aggregate_id = ? AND version = ?"),
                             (aggregate_id, version))

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        self._cursor.executemany(self._q(
            "INSERT INTO rm_log_{g} (aggregate_id, aggregate_version, session_id, centre_id, "
            "notification_id, occurred_at, event_type, actor_id, actor_role, event) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            [(row.aggregate_id, row.aggregate_version, row.session_id, row.centre_id,
              row.notification_id, row.occurred_at, row.event_type, row.actor_id, row.actor_role,
              _encode(row.event)) for row in rows])


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rm_docs_{g} (kind TEXT NOT NULL, key TEXT NOT NULL, "
    "centre_id TEXT NOT NULL, version BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE TABLE IF NOT EXISTS rm_log_{g} (aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, "
    "session_id TEXT NOT NULL, centre_id TEXT NOT NULL, notification_id BIGINT NOT NULL, "
    "occurred_at TEXT NOT NULL, event_type TEXT NOT NULL, actor_id TEXT NOT NULL, "
    "actor_role TEXT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (aggregate_id, aggregate_version))",
    "CREATE INDEX IF NOT EXISTS rm_log_{g}_session ON rm_log_{g} (session_id, notification_id)",
    "CREATE TABLE IF NOT EXISTS rm_versions_{g} (aggregate_id TEXT PRIMARY KEY, version BIGINT NOT NULL)",
)
_INDEXES = (
    # Lists of one centre's documents of a kind (its catch-ups, its sessions).
    "CREATE INDEX IF NOT EXISTS rm_docs_{g}_centre ON rm_docs_{g} (kind, centre_id, key)",
    # Dead-lettered events counted as in for their aggregate's version (see Transaction.skip).
    ("CREATE TABLE IF NOT EXISTS rm_skipped_{g} (aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, "
     "notification_id BIGINT NOT NULL, event_type TEXT NOT NULL, reason TEXT NOT NULL, "
     "PRIMARY KEY (aggregate_id, version))"),
)
_TABLES = ("rm_docs_{g}", "rm_log_{g}", "rm_versions_{g}", "rm_skipped_{g}")


class ReadStore:
    """Connections and generations; subclasses speak one SQL dialect."""

    placeholder = "?"
    row_lock = ""
    key_lock: str | None = None
    transient_errors: tuple[type[Exception], ...] = ()
    """Errors after which the same transaction may well succeed if tried again later."""

    def is_unavailable(self, error: BaseException) -> bool:
        """Whether ``error`` says the store cannot be reached or used right now (as opposed to
        a problem with what was asked of it): the caller should wait and try again."""
        return False

    def create_generation(self) -> int:
        with self._cursor() as cursor:
            self._begin(cursor)
            generation = self._meta(cursor, "generations") + 1
            self._set_meta(cursor, "generations", generation)
            for statement in (*_SCHEMA, *_INDEXES):
                cursor.execute(statement.replace("{g}", str(generation)))
        return generation

    def activate(self, generation: int) -> None:
        with self._cursor() as cursor:
            self._begin(cursor)
            self._set_meta(cursor, "generation", generation)

    def drop_generation(self, generation: int) -> None:
        with self._cursor() as cursor:
            self._begin(cursor)
            for table in _TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table.replace('{g}', str(generation))}")

    def generation(self) -> int:
        with self._cursor() as cursor:
            return self._meta(cursor, "generation")

    def watermark(self) -> int:
        """Every event up to this notification id is reflected in the read models."""
        with self._cursor() as cursor:
            return self._meta(cursor, "watermark")

    def advance_watermark(self, notification_id: int) -> None:
        with self._cursor() as cursor:
            self._begin(cursor)
            if notification_id > self._meta(cursor, "watermark"):
                self._set_meta(cursor, "watermark", notification_id)

    def ensure_ready(self) -> int:
        """Create the first generation if there is none; return the current generation."""
        with self._cursor() as cursor:
            self._begin(cursor)
            self._serialise_setup(cursor)
            cursor.execute("CREATE TABLE IF NOT EXISTS rm_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)")
            current = self._meta(cursor, "generation")
            if current == 0:
                current = self._meta(cursor, "generations") + 1
                self._set_meta(cursor, "generations", current)
                for statement in _SCHEMA:
                    cursor.execute(statement.replace("{g}", str(current)))
                self._set_meta(cursor, "generation", current)
            for statement in _INDEXES:  # also for a generation made before one of them existed
                cursor.execute(statement.replace("{g}", str(current)))
            return current

    @contextmanager
    def transaction(self, generation: int | None = None) -> Iterator[Transaction]:
        """A write transaction on ``generation``, by default the current one (read inside the
        transaction, so a concurrent switch of generations is never written past)."""
        with self._cursor() as cursor:
            self._begin(cursor)
            if generation is None:
                cursor.execute(self._current_generation_sql())
                row = cursor.fetchone()
                generation = int(row[0]) if row else 0
            yield Transaction(cursor, generation, self.placeholder, self.row_lock, self.key_lock)

    # --- reading ----------------------------------------------------------------------

    def get(self, kind: str, key: str, generation: int | None = None) -> StoredDoc | None:
        with self._cursor() as cursor:
            gen = generation or self._meta(cursor, "generation")
            cursor.execute(self._sql(f"SELECT centre_id, version, doc FROM rm_docs_{gen} WHERE kind = ? AND key = ?"),
                           (kind, key))
            row = cursor.fetchone()
        return None if row is None else StoredDoc(kind, key, row[0], int(row[1]), _decode(row[2]))

    def docs(self, kind: str, generation: int | None = None) -> list[StoredDoc]:
        with self._cursor() as cursor:
            gen = generation or self._meta(cursor, "generation")
            cursor.execute(self._sql(f"SELECT key, centre_id, version, doc FROM rm_docs_{gen} WHERE kind = ? ORDER BY key"),
                           (kind,))
            rows = cursor.fetchall()
        return [StoredDoc(kind, r[0], r[1], int(r[2]), _decode(r[3])) for r in rows]

    def centre_docs(self, kind: str, centre_id: str, generation: int | None = None) -> list[StoredDoc]:
        """Every document of ``kind`` in one centre, by key."""
        with self._cursor() as cursor:
            gen = generation or self._meta(cursor, "generation")
            cursor.execute(self._sql(f"SELECT key, version, doc FROM rm_docs_{gen} "
                                     "WHERE kind = ? AND centre_id = ? ORDER BY key"), (kind, centre_id))
            rows = cursor.fetchall()
        return [StoredDoc(kind, r[0], centre_id, int(r[1]), _decode(r[2])) for r in rows]

    def get_many(self, kind: str, keys: Sequence[str], generation: int | None = None) -> dict[str, StoredDoc]:
        """The documents of ``kind`` among ``keys`` that exist."""
        with self._cursor() as cursor:
            gen = generation or self._meta(cursor, "generation")
            return {d.key: d for d in _docs_among(cursor, self._sql, f"rm_docs_{gen}", kind, sorted(set(keys)))}

    def session_log(self, session_id: str, *, after: int = 0, limit: int = 1000,
                    generation: int | None = None) -> list[LogRow]:
        with self._cursor() as cursor:
            gen = generation or self._meta(cursor, "generation")
            cursor.execute(self._sql(
                "SELECT notification_id, session_id, centre_id, aggregate_id, aggregate_version, occurred_at, "
                f"event_type, actor_id, actor_role, event FROM rm_log_{gen} WHERE session_id = ? "
                "AND notification_id > ? ORDER BY notification_id LIMIT ?"), (session_id, after, limit))
            rows = cursor.fetchall()
        return [LogRow(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7], r[8], _decode(r[9]))
                for r in rows]

    def dump(self, generation: int) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of a generation, in a stable order: for comparing two generations."""
        with self._cursor() as cursor:
            out: dict[str, list[tuple[Any, ...]]] = {}
            for table, order in (("rm_docs", "kind, key"), ("rm_log", "aggregate_id, aggregate_version"),
                                 ("rm_versions", "aggregate_id")):
                cursor.execute(f"SELECT * FROM {table}_{generation} ORDER BY {order}")
                out[table] = [tuple(r) for r in cursor.fetchall()]
            return out

    # --- dialect ------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    def _meta(self, cursor: Cursor, name: str) -> int:
        cursor.execute(self._sql("SELECT value FROM rm_meta WHERE name = ?"), (name,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, cursor: Cursor, name: str, value: int) -> None:
        cursor.execute(self._sql("INSERT INTO rm_meta (name, value) VALUES (?, ?) "
                                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value"), (name, value))

    def _current_generation_sql(self) -> str:
        return "SELECT value FROM rm_meta WHERE name = 'generation'"

    def _begin(self, cursor: Cursor) -> None:
        """Start a write transaction (subclasses)."""

    def _serialise_setup(self, cursor: Cursor) -> None:
        """Keep two processes from creating the tables at the same time (subclasses)."""

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        """Release connections."""


class SQLiteReadStore(ReadStore):
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, timeout=30,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        connection = self._connection()
        cursor = connection.cursor()
        try:
            yield cursor
            if connection.in_transaction:
                connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                with suppress(sqlite3.Error):  # never hide the error that got us here
                    connection.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def _begin(self, cursor: Cursor) -> None:
        # One writer at a time across processes: reads inside see a stable database.
        cursor.execute("BEGIN IMMEDIATE")

    def is_unavailable(self, error: BaseException) -> bool:
        # Busy or locked beyond the timeout, as the HTTP services judge it (a 503 there); and
        # the disk rather than the event: full, failing, unopenable or read-only. Any other
        # OperationalError (no such table, too many variables…) is about what was asked.
        if store_unavailable(error):
            return True
        if not isinstance(error, sqlite3.OperationalError):
            return False
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_DISK_FAULTS
        return any(text in str(error) for text in _SQLITE_DISK_MESSAGES)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class PostgresReadStore(ReadStore):
    placeholder = "%s"
    row_lock = " FOR UPDATE"
    # Row locks cannot lock a document that does not exist yet; two replicas creating the same
    # tutor document at once would lose one update. A transaction-scoped advisory lock per key can.
    key_lock = ("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) WITH ORDINALITY"
                " AS t(k, n) ORDER BY n")
    """Locks a sorted list of keys in that order."""
    # A lock wait cut short by the statement timeout is a conflict with another writer too.
    transient_errors = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
                        psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)

    def __init__(self, conninfo: str, pool_size: int = 4, *, connect_timeout: float = 3.0,
                 pre_ping: bool = True, max_age: float = 1800.0) -> None:
        # ``check`` pings a pooled connection before lending it, so the first use after a
        # PostgreSQL restart gets a fresh connection instead of "the connection is lost";
        # ``timeout`` bounds the wait for a connection while PostgreSQL is down.
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, open=True,
                                    kwargs={"autocommit": True},
                                    check=ConnectionPool.check_connection if pre_ping else None,
                                    timeout=connect_timeout, max_lifetime=max_age,
                                    name="read-store")

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        with self._pool.connection() as connection:
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                connection.rollback()
            with connection.cursor() as cursor:
                try:
                    yield cursor
                    if connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                        cursor.execute("COMMIT")
                except BaseException:
                    self._roll_back(connection)
                    raise

    @staticmethod
    def _roll_back(connection: psycopg.Connection[Any]) -> None:
        """End a failed transaction on a connection that still works. A broken connection is
        left alone: the pool discards it, and the error that broke it is the one reported."""
        if connection.broken or connection.closed:
            return
        if connection.info.transaction_status in (psycopg.pq.TransactionStatus.INTRANS,
                                                  psycopg.pq.TransactionStatus.INERROR):
            try:
                connection.execute("ROLLBACK")
            except psycopg.Error as error:  # the pool discards or resets it when it comes back
                log.debug("read_store.rollback_failed", error=str(error))

    def is_unavailable(self, error: BaseException) -> bool:
        # Lost or refused connections, no connection within the timeout, a server shutting
        # down. A statement timeout is about the statement, deadlocks are ``transient_errors``.
        return (isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
                and not isinstance(error, psycopg.errors.QueryCanceled
                                   | psycopg.errors.TransactionRollback))

    def _begin(self, cursor: Cursor) -> None:
        cursor.execute("BEGIN")

    def _serialise_setup(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(7212630001)")

    def _current_generation_sql(self) -> str:
        # FOR SHARE: a generation switch waits for writers of the old generation, and they
        # for it, so no write lands in a generation after it stopped being current.
        return "SELECT value FROM rm_meta WHERE name = 'generation' FOR SHARE"

    def close(self) -> None:
        self._pool.close()


_SQLITE_DISK_FAULTS = frozenset({sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
                                  sqlite3.SQLITE_READONLY})
"""Primary result codes of a disk that fails the store, whatever the event."""
_SQLITE_DISK_MESSAGES = ("disk I/O error", "database or disk is full", "unable to open database file",
                         "attempt to write a readonly database")
"""Their messages, for an error that carries no code."""



@dataclass(frozen=True)
class PostgresSettings:
    """How the read store reaches PostgreSQL: ``TUTORPULSE_READ_POSTGRES_*``, each defaulting
    to the event store's ``TUTORPULSE_POSTGRES_*`` value, then to the documented default."""

    conninfo: str
    connect_timeout: float
    pre_ping: bool
    max_age: float

    @classmethod
    def from_env(cls, source: Mapping[str, str]) -> PostgresSettings:
        def setting(name: str, default: str) -> str:
            return source.get(f"TUTORPULSE_READ_POSTGRES_{name}",
                              source.get(f"TUTORPULSE_POSTGRES_{name}", default))

        def seconds(name: str, default: str) -> float:
            value = setting(name, default)
            try:
                parsed = float(value)
            except ValueError:
                parsed = -1.0
            if not parsed >= 0:
                raise ValueError(f"TUTORPULSE_READ_POSTGRES_{name} (or TUTORPULSE_POSTGRES_{name}) "
                                 f"must be a number of seconds, not {value!r}")
            return parsed

        def yes_or_no(name: str, default: str) -> bool:
            return flag(setting(name, default), name=f"TUTORPULSE_READ_POSTGRES_{name} (or "
                        f"TUTORPULSE_POSTGRES_{name})")

        connect_timeout = seconds("CONNECT_TIMEOUT", "3")
        conninfo = make_conninfo(
            host=setting("HOST", "127.0.0.1"), port=setting("PORT", "5432"),
            dbname=setting("DBNAME", "tutorpulse"), user=setting("USER", "tutorpulse"),
            password=setting("PASSWORD", "") or None,
            # The event store's libpq parameters: connect and statement timeouts, keepalives.
            **libpq_parameters({LIBPQ_CONNECT_TIMEOUT: str(connect_timeout),
                                STATEMENT_TIMEOUT: str(seconds("STATEMENT_TIMEOUT", "5"))}))
        return cls(conninfo, connect_timeout, yes_or_no("PRE_PING", "yes"),
                   seconds("CONN_MAX_AGE", "1800") or 1800.0)


def open_read_store(overrides: Mapping[str, str] | None = None) -> ReadStore:
    source = {**os.environ, **(overrides or {})}
    kind = source.get("TUTORPULSE_READ_STORE", "sqlite").lower()
    if kind == "sqlite":
        store: ReadStore = SQLiteReadStore(Path(source.get("TUTORPULSE_READ_SQLITE_PATH",
                                                           "var/readmodels.sqlite")))
    elif kind == "postgres":
        settings = PostgresSettings.from_env(source)
        store = PostgresReadStore(settings.conninfo, connect_timeout=settings.connect_timeout,
                                  pre_ping=settings.pre_ping, max_age=settings.max_age)
    else:
        raise ValueError(f"TUTORPULSE_READ_STORE must be 'sqlite' or 'postgres', not {kind!r}")
    try:
        store.ensure_ready()
    except BaseException:  # e.g. PostgreSQL is down: do not leave a pool retrying behind
        store.close()
        raise
    return store


class MemoryTransaction(Transaction):
    """A transaction over documents held in memory: for replaying history into a throwaway
    read model (the Control Center as it was at some instant)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], StoredDoc] = {}
        self.versions: dict[str, int] = {}
        self.generation = 0

    def aggregate_version(self, aggregate_id: str) -> int:
        return self.versions.get(aggregate_id, 0)

    def aggregate_versions(self, aggregate_ids: Sequence[str]) -> dict[str, int]:
        return {a: self.versions.get(a, 0) for a in aggregate_ids}

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        self.versions.update(versions)

    def past_skipped(self, versions: Mapping[str, int]) -> dict[str, int]:
        """A replayed history has no dead letters."""
        return dict(versions)

    def get(self, kind: str, key: str) -> StoredDoc | None:
        return self.docs.get((kind, key))

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, StoredDoc | None]:
        return {key: self.docs.get((kind, key)) for key in keys}

    def put_many(self, docs: Sequence[StoredDoc]) -> None:
        self.docs.update({(d.kind, d.key): d for d in docs})

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        """The history being replayed is already logged."""

    def make_current(self) -> None:
        raise NotImplementedError("an in-memory replay has no generation to switch to")
