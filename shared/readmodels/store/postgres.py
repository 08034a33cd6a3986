"""The read store on PostgreSQL: a small pool of connections with the event store's libpq
parameters (connect and statement timeouts, keepalives), checked before use after a second
idle."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg.adapt import Dumper
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.eventstore.postgres import (
    LIBPQ_CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    answer_within,
    libpq_parameters,
)
from shared.eventstore.postgres import _sweeping_check as sweeping_check
from shared.readmodels.documents import Kind, LogRow
from shared.readmodels.store.base import ReadStore
from shared.readmodels.store.settings import ReadStoreSettings
from shared.readmodels.store.transaction import (
    WATERMARK_UPSERT,
    Cursor,
    DocRow,
    Found,
    GenerationSwitched,
    Reads,
    StoredDoc,
    Transaction,
    doc_rows,
    log_rows,
    resolve,
)

log = structlog.get_logger(__name__)


class TextArray(list[str | None]):
    """Strings sent as one binary ``text[]`` (:class:`TextArrayDumper`)."""


class BigintArray(list[int]):
    """Integers sent as one binary ``bigint[]`` (:class:`BigintArrayDumper`)."""


_NO_NULLS = 0
_ARRAY = struct.Struct(">iiI")
"""An array's header: dimensions, whether it holds nulls, its elements' type."""
_DIMENSION = struct.Struct(">ii")
"""A dimension: its length and lower bound."""
_LENGTH = struct.Struct(">i")
_BIGINT = struct.Struct(">iq")


class TextArrayDumper(Dumper):
    """A list of strings as PostgreSQL's binary array, in one pass. psycopg's own list dumper
    works out the elements' type and dumps each element through its dumper: about 13 µs per
    array, and a projection batch sends some twenty-five."""

    format = psycopg.pq.Format.BINARY
    oid = psycopg.postgres.types["text"].array_oid

    def dump(self, obj: Any) -> bytes:
        items: list[str | None] = obj
        if not items:
            return _ARRAY.pack(0, _NO_NULLS, psycopg.postgres.types["text"].oid)
        parts = [b""]
        nulls = _NO_NULLS
        for item in items:
            if item is None:
                parts.append(_LENGTH.pack(-1))
                nulls = 1
            else:
                data = item.encode()
                parts.append(_LENGTH.pack(len(data)))
                parts.append(data)
        parts[0] = _ARRAY.pack(1, nulls, psycopg.postgres.types["text"].oid) + _DIMENSION.pack(
            len(items), 1
        )
        return b"".join(parts)


class BigintArrayDumper(Dumper):
    """A list of integers as PostgreSQL's binary ``bigint[]``, in one pass."""

    format = psycopg.pq.Format.BINARY
    oid = psycopg.postgres.types["int8"].array_oid

    def dump(self, obj: Any) -> bytes:
        items: list[int] = obj
        element = psycopg.postgres.types["int8"].oid
        if not items:
            return _ARRAY.pack(0, _NO_NULLS, element)
        return b"".join(
            [
                _ARRAY.pack(1, _NO_NULLS, element),
                _DIMENSION.pack(len(items), 1),
                *(_BIGINT.pack(8, item) for item in items),
            ]
        )


psycopg.adapters.register_dumper(TextArray, TextArrayDumper)
psycopg.adapters.register_dumper(BigintArray, BigintArrayDumper)


def _columns(rows: Sequence[Sequence[Any]]) -> list[TextArray | BigintArray]:
    """Rows as one array per column (integers or strings, by the first row's), each passed to
    ``unnest``."""
    return [
        BigintArray(column) if isinstance(column[0], int) else TextArray(column)
        for column in zip(*rows, strict=True)
    ]


def _current(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


_SKIPPED = (
    "SELECT aggregate_id, version FROM rm_skipped_{g} WHERE aggregate_id = ANY(%b::text[])"
    " ORDER BY aggregate_id, version"
)
_READ_PARTS = {
    "d": (
        "SELECT 'd'::text, d.kind, d.key, d.centre_id, d.version, d.doc FROM rm_docs_{g} AS d"
        " JOIN unnest(%b::text[], %b::text[]) AS w(kind, key)"
        " ON d.kind = w.kind AND d.key = w.key"
    ),
    "v": (
        "SELECT 'v'::text, d.kind, d.key, NULL::text, d.version, NULL::text FROM rm_docs_{g} AS d"
        " JOIN unnest(%b::text[], %b::text[]) AS w(kind, key)"
        " ON d.kind = w.kind AND d.key = w.key"
    ),
    "a": (
        "SELECT 'a'::text, NULL::text, aggregate_id, NULL::text, version, NULL::text"
        " FROM rm_versions_{g} WHERE aggregate_id = ANY(%b::text[])"
    ),
    "s": (
        "SELECT 's'::text, NULL::text, aggregate_id, NULL::text, version, NULL::text"
        " FROM rm_skipped_{g} WHERE aggregate_id = ANY(%b::text[])"
    ),
}
"""The parts of :meth:`PostgresTransaction.read`'s one statement, each row tagged with its
part: documents, documents' versions, aggregates' versions, dead-lettered versions."""


class _WritesFirst:
    """A cursor that sends the writes a transaction holds back (``send``) before any other
    statement, so that every statement sees them."""

    def __init__(self, cursor: Cursor, send: Callable[[], None]) -> None:
        self._real = cursor
        self._send = send

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        self._send()
        return self._real.execute(query, params)

    def executemany(self, query: str, params: Sequence[Sequence[Any]]) -> Any:
        self._send()
        return self._real.executemany(query, params)

    def fetchone(self) -> Any:
        return self._real.fetchone()

    def fetchall(self) -> list[Any]:
        return self._real.fetchall()


class PostgresTransaction(Transaction):
    """Writes a batch's documents, versions and log rows in one statement each (``unnest`` of
    one array per column) rather than a statement per row: the server plans and runs one
    statement, not hundreds. The arrays go in binary (``%b``): in text, psycopg escapes every
    quote of every JSON document with a regular expression, which costs more than the rows.
    Reads of many keys are one statement with an array too (``= ANY``), whose text is the same
    whatever the number of keys, so psycopg prepares it once per connection.

    The writes (documents, log rows, aggregates' versions, the watermark) are held back and
    sent together as one statement (data-modifying ``WITH`` parts), before the commit or
    before any other statement: a projection batch's writes were four statements, and in
    pipeline mode psycopg spends a round of its pipeline and a send on each."""

    def __init__(
        self,
        cursor: Cursor,
        generation: int,
        placeholder: str,
        lock: str,
        key_lock: str | None,
        confirm: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(cursor, generation, placeholder, lock, key_lock, confirm)
        self._writes: dict[str, tuple[str, list[Any]]] = {}
        """The statements held back, by table (one each), with their parameters."""
        self._returning: tuple[str, Callable[[list[Any]], None]] | None = None
        """The held-back statement whose rows are wanted (by its table), and who wants them."""
        self._answers: list[tuple[psycopg.Cursor[Any], Callable[[list[Any]], None]]] = []
        """Cursors whose rows are handed over once the transaction commits."""
        self._sending = self._cursor
        self._cursor = _WritesFirst(self._sending, self._send_writes)

    def _lock_keys(self, names: Sequence[str]) -> None:
        if self._key_lock is not None and names:
            self._cursor.execute(
                self._key_lock, (TextArray(sorted(f"{self.generation}:{name}" for name in names)),)
            )

    def _hold(self, table: str, sql: str, params: list[Any]) -> None:
        """Hold back a write of ``table``; a second write of the same table sends the first
        (one statement must not change a row twice). Documents put whole without a read
        (:meth:`put_counted`) are held apart from those read first, which they never are."""
        if table in self._writes:
            self._send_writes()
        self._writes[table] = (sql, params)

    def _send_writes(self) -> None:
        writes, self._writes = self._writes, {}
        returning, self._returning = self._returning, None
        if not writes:
            return
        statements = list(writes.values())
        tables = list(writes)
        if len(statements) == 1:
            sql, params = statements[0]
        else:
            parts = ", ".join(f"w{n} AS ({part})" for n, (part, _) in enumerate(statements))
            answer = f"* FROM w{tables.index(returning[0])}" if returning is not None else "1"
            sql = f"WITH {parts} SELECT {answer}"
            params = [param for _, held in statements for param in held]
        if returning is None:
            self._sending.execute(sql, params)
            return
        # On a cursor of its own, read after the commit: the rows come back in the commit's
        # round trip rather than one of their own.
        assert isinstance(self._dialect_cursor, psycopg.Cursor)
        cursor = self._dialect_cursor.connection.cursor()
        cursor.execute(sql, params)
        self._answers.append((cursor, returning[1]))

    def put_counted(
        self,
        docs: Sequence[StoredDoc[Any]],
        settled: Callable[[dict[tuple[str, str], int]], None],
    ) -> None:
        """The documents' keys are locked and each is written at its stored version plus its
        count by the upsert itself, which returns the versions: no read before writing, and the
        versions come back with the commit."""
        if not docs:
            settled({})
            return
        self._lock_keys([f"{d.kind.name}:{d.key}" for d in docs])

        def hand_over(rows: list[Any]) -> None:
            settled({(kind, key): int(version) for kind, key, version in rows})

        self._hold(
            "rm_docs_counted",
            self._q(
                "INSERT INTO rm_docs_{g} AS d (kind, key, centre_id, version, doc)"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[],"
                " %b::text[])"
                " ON CONFLICT (kind, key)"
                " DO UPDATE SET version = d.version + excluded.version, doc = excluded.doc"
                " RETURNING d.kind, d.key, d.version"
            ),
            _columns(doc_rows(docs)),
        )
        self._returning = ("rm_docs_counted", hand_over)

    def set_versions_past_skipped(self, versions: Sequence[tuple[str, int]]) -> None:
        """Each aggregate's version passed its dead-lettered versions right after it, worked
        out by the upsert itself (the least version from the given one on whose next one was
        not dead-lettered): no read of the dead-lettered versions before writing. The
        aggregates are locked by whoever read their applied versions."""
        if versions:
            self._hold(
                "rm_versions",
                self._q(
                    "INSERT INTO rm_versions_{g} (aggregate_id, version)"
                    " SELECT w.a, (SELECT min(c.x) FROM (SELECT w.v UNION ALL"
                    " SELECT s.version FROM rm_skipped_{g} AS s"
                    " WHERE s.aggregate_id = w.a AND s.version > w.v) AS c(x)"
                    " WHERE NOT EXISTS (SELECT 1 FROM rm_skipped_{g} AS n"
                    " WHERE n.aggregate_id = w.a AND n.version = c.x + 1))"
                    " FROM unnest(%b::text[], %b::bigint[]) AS w(a, v)"
                    " ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"
                ),
                _columns(versions),
            )

    def committed(self) -> None:
        answers, self._answers = self._answers, []
        for cursor, hand_over in answers:
            with cursor:
                hand_over(cursor.fetchall())

    def before_commit(self) -> None:
        self._send_writes()
        super().before_commit()

    def advance_watermark(self, notification_id: int) -> None:
        self._hold("rm_meta", self._q(WATERMARK_UPSERT), [notification_id])

    def get_many(
        self, kind: Kind[Any] | str, keys: Sequence[str]
    ) -> dict[str, StoredDoc[Any] | None]:
        of = resolve(kind)
        self._lock_keys([f"{of.name}:{k}" for k in keys])
        found: dict[str, StoredDoc[Any] | None] = dict.fromkeys(keys)
        if keys:
            self._cursor.execute(
                self._q(
                    "SELECT key, centre_id, version, doc FROM rm_docs_{g}"
                    " WHERE kind = %s AND key = ANY(%b::text[])"
                ),
                (of.name, TextArray(keys)),
            )
            for key, centre_id, version, doc in self._cursor.fetchall():
                found[key] = StoredDoc(of, key, centre_id, int(version), of.decode(doc))
        return found

    def doc_versions(self, kind: Kind[Any] | str, keys: Sequence[str]) -> dict[str, int]:
        of = resolve(kind)
        return self._versions(
            [f"{of.name}:{k}" for k in keys],
            keys,
            "SELECT key, version FROM rm_docs_{g} WHERE kind = %s AND key = ANY(%b::text[])",
            (of.name,),
        )

    def aggregate_versions(self, aggregate_ids: Sequence[str]) -> dict[str, int]:
        return self._versions(
            [f"aggregate:{a}" for a in aggregate_ids],
            aggregate_ids,
            "SELECT aggregate_id, version FROM rm_versions_{g}"
            " WHERE aggregate_id = ANY(%b::text[])",
            (),
        )

    def _versions(
        self, locks: list[str], keys: Sequence[str], sql: str, leading: tuple[str, ...]
    ) -> dict[str, int]:
        """The stored versions of ``keys`` (0 for missing ones) by ``sql`` (its parameters:
        ``leading``, then the keys as one array), after locking ``locks``."""
        self._lock_keys(locks)
        found = dict.fromkeys(keys, 0)
        if keys:
            self._cursor.execute(self._q(sql), (*leading, TextArray(keys)))
            found.update({row[0]: int(row[1]) for row in self._cursor.fetchall()})
        return found

    def skipped_versions(self, aggregate_ids: Sequence[str]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        if aggregate_ids:
            self._cursor.execute(self._q(_SKIPPED), (TextArray(aggregate_ids),))
            for aggregate_id, version in self._cursor.fetchall():
                found.setdefault(aggregate_id, []).append(int(version))
        return found

    def read(self, wanted: Reads) -> Found:
        """One statement locks every document and aggregate named; one more reads all of it
        (a ``UNION ALL`` of what is wanted, each row tagged with its part), from a snapshot
        taken after the locks. Both travel in one round trip (the transaction is in pipeline
        mode), and every statement costs the client a round of psycopg's pipeline and a send:
        two statements, not one per part."""
        docs = [(kind, key) for kind, keys in wanted.docs.items() for key in keys]
        versions = [(kind, key) for kind, keys in wanted.versions.items() for key in keys]
        self._lock_keys(
            [f"aggregate:{a}" for a in wanted.aggregates]
            + [f"{kind.name}:{key}" for kind, key in (*docs, *versions)]
        )
        found = Found(
            docs={(kind.name, key): None for kind, key in docs},
            aggregates=dict.fromkeys(wanted.aggregates, 0),
            versions={(kind.name, key): 0 for kind, key in versions},
            skipped={},
        )
        parts: list[str] = []
        params: list[Any] = []
        if docs:
            parts.append(_READ_PARTS["d"])
            params += _columns([(k.name, key) for k, key in docs])
        if versions:
            parts.append(_READ_PARTS["v"])
            params += _columns([(k.name, key) for k, key in versions])
        if wanted.aggregates:
            parts.append(_READ_PARTS["a"])
            params.append(TextArray(wanted.aggregates))
        if wanted.skipped:
            parts.append(_READ_PARTS["s"])
            params.append(TextArray(wanted.skipped))
        if not parts:
            return found
        assert isinstance(self._dialect_cursor, psycopg.Cursor)
        self._send_writes()
        with (
            self._dialect_cursor.connection.cursor() as cursor,
            self._confirming_on_failure(),
        ):
            cursor.execute(self._q(" UNION ALL ".join(parts)), params)
            self._confirmed()
            rows = cursor.fetchall()
        kinds = {kind.name: kind for kind, _ in docs}
        for part, name, key, centre_id, version, doc in rows:
            if part == "d":
                kind = kinds[name]
                found.docs[(name, key)] = StoredDoc(
                    kind, key, centre_id, int(version), kind.decode(doc)
                )
            elif part == "v":
                found.versions[(name, key)] = int(version)
            elif part == "a":
                found.aggregates[key] = int(version)
            else:
                found.skipped.setdefault(key, []).append(int(version))
        for dead_lettered in found.skipped.values():
            dead_lettered.sort()
        return found

    @contextmanager
    def _confirming_on_failure(self) -> Iterator[None]:
        """A failure of the queries' round trip is a switch if the generation was switched."""
        try:
            yield
        except psycopg.Error:
            self._confirmed()
            raise

    def put_rows(self, rows: Sequence[DocRow]) -> None:
        if rows:
            self._hold(
                "rm_docs",
                self._q(
                    "INSERT INTO rm_docs_{g} (kind, key, centre_id, version, doc)"
                    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[],"
                    " %b::text[])"
                    " ON CONFLICT (kind, key)"
                    " DO UPDATE SET version = excluded.version, doc = excluded.doc"
                ),
                _columns(rows),
            )

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        if versions:
            self._hold(
                "rm_versions",
                self._q(
                    "INSERT INTO rm_versions_{g} (aggregate_id, version)"
                    " SELECT * FROM unnest(%b::text[], %b::bigint[])"
                    " ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"
                ),
                _columns(versions),
            )

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        if rows:
            self._hold(
                "rm_log",
                self._q(
                    "INSERT INTO rm_log_{g} (aggregate_id, aggregate_version, session_id, "
                    "centre_id, notification_id, occurred_at, event_type, actor_id, actor_role, "
                    "event) SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::text[], "
                    "%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
                ),
                _columns(log_rows(rows)),
            )


class PostgresReadStore(ReadStore):
    placeholder = "%s"
    transaction_type = PostgresTransaction
    row_lock = " FOR UPDATE"
    # Row locks cannot lock a document that does not exist yet; two replicas creating the same
    # tutor document at once would lose one update. A transaction-scoped advisory lock per key can.
    key_lock = (
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n"
    )
    """Locks a sorted list of keys in that order."""
    # A lock wait cut short by the statement timeout is a conflict with another writer too.
    transient_errors = (
        psycopg.errors.DeadlockDetected,
        psycopg.errors.SerializationFailure,
        psycopg.errors.QueryCanceled,
        psycopg.errors.LockNotAvailable,
    )

    def __init__(
        self,
        conninfo: str,
        pool_size: int = 4,
        *,
        connect_timeout: float = 3.0,
        pre_ping: bool = True,
        max_age: float = 1800.0,
    ) -> None:
        # The check pings a pooled connection before lending it if it has been idle for a
        # second (as the event store's does; lent again sooner, under load, it is trusted: a
        # ping before every read was a round trip of three), so the first use after a
        # PostgreSQL restart gets a fresh connection instead of "the connection is lost" (a
        # read that got one closed within that second is made again, ``_read_again``);
        # ``timeout`` bounds the wait for a connection while PostgreSQL is down.
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            timeout=connect_timeout,
            max_lifetime=max_age,
            name="read-store",
        )
        if pre_ping:
            self._pool._check = sweeping_check(self._pool)
        self._pool.open()

    def answer_within(self, timeout: float) -> None:
        """Give up on a connection held ``timeout`` seconds without PostgreSQL answering (a
        frozen server: see :class:`shared.eventstore.postgres.AnswerLimit`); 0: no limit."""
        answer_within(self._pool, timeout)

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
        if connection.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            try:
                connection.execute("ROLLBACK")
            except psycopg.Error as error:  # the pool discards or resets it when it comes back
                log.debug("read_store.rollback_failed", error=str(error))

    def _among(self, keys: list[str]) -> list[tuple[str, list[Any]]]:
        # One statement with an array of keys, whose text does not change with their number:
        # psycopg prepares it once per connection. The array goes in binary (``%b``): in text,
        # psycopg quotes and escapes every key with a regular expression, which cost about five
        # times the rest of the statement's client-side work (30 keys: 109 against 23 µs).
        return [("d.key = ANY(%b::text[])", [keys])]

    def _is_missing_table(self, error: BaseException) -> bool:
        return isinstance(error, psycopg.errors.UndefinedTable)

    def _read_again(self, error: BaseException) -> bool:
        # A pooled connection is pinged only after a second idle, so one the server closed
        # within that second (a restart) fails the read that uses it: the read is made once more
        # after a check of every idle connection, which replaces the dead ones. No connection
        # within the timeout (``PoolTimeout``) is an outage and is not tried again.
        if not self.is_unavailable(error) or isinstance(error, PoolTimeout):
            return False
        self._pool.check()
        return True

    def is_unavailable(self, error: BaseException) -> bool:
        # Lost or refused connections, no connection within the timeout, a server shutting
        # down. A statement timeout is about the statement, deadlocks are ``transient_errors``.
        return isinstance(
            error, psycopg.OperationalError | psycopg.InterfaceError
        ) and not isinstance(
            error, psycopg.errors.QueryCanceled | psycopg.errors.TransactionRollback
        )

    def _begin(self, cursor: Cursor) -> None:
        cursor.execute("BEGIN")

    @contextmanager
    def _transaction_statements(self, cursor: Cursor) -> Iterator[None]:
        """In pipeline mode: a statement whose answer is not needed yet (BEGIN, a key lock, a
        write, COMMIT) travels with the next one whose answer is, so a projection batch costs
        a round trip per read rather than one per statement (a lock and the read it guards go
        together, and the writes with the commit). The server still runs them one after the
        other, each read with a snapshot taken after the locks before it."""
        assert isinstance(cursor, psycopg.Cursor)
        with cursor.connection.pipeline():
            yield
            cursor.execute("COMMIT")

    def _serialise_setup(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(7212630001)")

    def _missing(self, cursor: Cursor, tables: Sequence[str]) -> list[str]:
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) WITH ORDINALITY AS n(t, i)"
            " WHERE to_regclass(t) IS NULL ORDER BY i",
            (list(tables),),
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def _generation_to_write(
        self, cursor: Cursor, trust: bool
    ) -> tuple[int, Callable[[], None] | None]:
        trusted = self._last_generation
        if not trust or trusted is None:
            return super()._generation_to_write(cursor, trust)
        # Read (and locked against a switch) before any statement after it runs, on a cursor
        # of its own: its answer comes back with the transaction's first read.
        assert isinstance(cursor, psycopg.Cursor)
        current = cursor.connection.cursor()
        current.execute(self._current_generation_sql())

        def confirm() -> None:
            try:
                row = current.fetchone()
            except psycopg.Error:
                # A later statement of the round trip failed (a rebuild dropped the trusted
                # generation's tables, say); this answer came back before it.
                if current.pgresult is None:
                    raise
                row = current.fetchone()
                if _current(row) == trusted:
                    raise
            finally:
                current.close()
            self._last_generation = found = _current(row)
            if found != trusted:
                raise GenerationSwitched(trusted, found)

        return trusted, confirm

    def _current_generation_sql(self) -> str:
        # FOR SHARE: a generation switch waits for writers of the old generation, and they
        # for it, so no write lands in a generation after it stopped being current.
        return "SELECT value FROM rm_meta WHERE name = 'generation' FOR SHARE"

    def close(self) -> None:
        self._pool.close()


@dataclass(frozen=True)
class PostgresSettings:
    """How the read store reaches PostgreSQL: :class:`ReadStoreSettings` as libpq wants them,
    with the event store's libpq parameters (connect and statement timeouts, keepalives)."""

    conninfo: str
    connect_timeout: float
    pre_ping: bool
    max_age: float

    @classmethod
    def of(cls, settings: ReadStoreSettings) -> PostgresSettings:
        conninfo = make_conninfo(
            host=settings.postgres_host,
            port=str(settings.postgres_port),
            dbname=settings.postgres_dbname,
            user=settings.postgres_user,
            password=settings.postgres_password or None,
            **libpq_parameters(
                {
                    LIBPQ_CONNECT_TIMEOUT: str(settings.postgres_connect_timeout),
                    STATEMENT_TIMEOUT: str(settings.postgres_statement_timeout),
                }
            ),
        )
        return cls(
            conninfo,
            settings.postgres_connect_timeout,
            settings.postgres_pre_ping,
            settings.postgres_conn_max_age or 1800.0,
        )
