"""The read store's tables, generations and reads; subclasses speak one SQL dialect.

Every read model is a set of JSON documents (``rm_docs``) plus the session log rows
(``rm_log``). Exactly-once application is kept per aggregate: ``rm_versions`` holds the last
version of each aggregate applied, in the same transaction as the documents it changed, so a
redelivered event is recognised and skipped, and an event that overtook its predecessor is
refused until the predecessor is in. An event that was dead-lettered counts as in for its
aggregate's version (so the aggregate's later events apply) and is remembered in
``rm_skipped``, so that replaying it from the dead-letter stream applies it once, out of band.

Tables carry a generation number. A rebuild fills the next generation while queries keep
reading the current one, then switches ``rm_meta.generation`` in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, overload

from shared.readmodels.documents import D, Document, Kind, LogRow
from shared.readmodels.store.transaction import (
    LOG_COLUMNS,
    WATERMARK_UPSERT,
    Cursor,
    StoredDoc,
    Transaction,
    chunks,
    log_row,
    resolve,
)
from shared.schema import MissingTables

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS rm_docs_{g} (kind TEXT NOT NULL, key TEXT NOT NULL, "
        "centre_id TEXT NOT NULL, version BIGINT NOT NULL, doc TEXT NOT NULL, "
        "PRIMARY KEY (kind, key))"
    ),
    (
        "CREATE TABLE IF NOT EXISTS rm_log_{g} (aggregate_id TEXT NOT NULL, "
        "aggregate_version BIGINT NOT NULL, session_id TEXT NOT NULL, centre_id TEXT NOT NULL, "
        "notification_id BIGINT NOT NULL, occurred_at TEXT NOT NULL, event_type TEXT NOT NULL, "
        "actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, event TEXT NOT NULL, "
        "PRIMARY KEY (aggregate_id, aggregate_version))"
    ),
    "CREATE INDEX IF NOT EXISTS rm_log_{g}_session ON rm_log_{g} (session_id, notification_id)",
    (
        "CREATE TABLE IF NOT EXISTS rm_versions_{g} (aggregate_id TEXT PRIMARY KEY, "
        "version BIGINT NOT NULL)"
    ),
)
_INDEXES = (
    # Lists of one centre's documents of a kind (its catch-ups, its sessions).
    "CREATE INDEX IF NOT EXISTS rm_docs_{g}_centre ON rm_docs_{g} (kind, centre_id, key)",
    # Dead-lettered events counted as in for their aggregate's version (see Transaction.skip).
    (
        "CREATE TABLE IF NOT EXISTS rm_skipped_{g} (aggregate_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, notification_id BIGINT NOT NULL, event_type TEXT NOT NULL, "
        "reason TEXT NOT NULL, PRIMARY KEY (aggregate_id, version))"
    ),
)
_TABLES = ("rm_docs_{g}", "rm_log_{g}", "rm_versions_{g}", "rm_skipped_{g}")


R = TypeVar("R")

_ATTEMPTS = 5
"""Reads of one request that may each find the generation switched before one gives up."""


class GenerationUnsettled(RuntimeError):
    """The current generation changed under every attempt of one read."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"the read store's generation changed during {attempts} reads in a row")


class ReadStore:
    """Connections and generations; subclasses speak one SQL dialect.

    Documents come back decoded into their kind's struct; a kind may also be named by a string
    (``"session"``), which gives the same structs typed as :class:`Document`."""

    _last_generation: int | None = None
    """The generation the last write transaction found current."""

    placeholder = "?"
    row_lock = ""
    key_lock: str | None = None
    transaction_type: type[Transaction] = Transaction
    """The dialect's transaction (PostgreSQL writes a batch's rows in one statement each)."""
    transient_errors: tuple[type[Exception], ...] = ()
    creates_tables = True
    """Whether :meth:`ensure_ready` creates the meta table and the first generation
    (``TUTORPULSE_CREATE_TABLES``, set by ``open_read_store``); a rebuild's
    :meth:`create_generation` creates its generation either way."""
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
        return self._reading(lambda cursor: self._meta(cursor, "generation"))

    def watermark(self) -> int:
        """Every event up to this notification id is reflected in the read models."""
        return self._reading(lambda cursor: self._meta(cursor, "watermark"))

    def advance_watermark(self, notification_id: int) -> None:
        """Move the watermark to ``notification_id`` unless it is there or past it already
        (another replica may have moved it further): one statement, its own transaction."""
        with self._cursor() as cursor:
            cursor.execute(self._sql(WATERMARK_UPSERT), (notification_id,))

    def ensure_ready(self) -> int:
        """Create the first generation if there is none; return the current generation.
        A store that may not create tables (:attr:`creates_tables` off) creates nothing:
        :class:`MissingTables` names the meta table or the current generation's tables if
        ``python -m services.migrate`` has not made them."""
        if not self.creates_tables:
            return self._check_ready()
        with self._cursor() as cursor:
            self._begin(cursor)
            self._serialise_setup(cursor)
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS rm_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)"
            )
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

    def _check_ready(self) -> int:
        with self._cursor() as cursor:
            if self._missing(cursor, ["rm_meta"]):
                raise MissingTables("read store", ["rm_meta"])
            current = self._meta(cursor, "generation")
            if current == 0:
                raise MissingTables("read store", [_TABLES[0].replace("{g}", "1")])
            missing = self._missing(cursor, [t.replace("{g}", str(current)) for t in _TABLES])
            if missing:
                raise MissingTables("read store", missing)
            return current

    def _missing(self, cursor: Cursor, tables: Sequence[str]) -> list[str]:
        """Those of ``tables`` that do not exist (subclasses)."""
        raise NotImplementedError

    @contextmanager
    def transaction(
        self, generation: int | None = None, *, only_writer: bool = False, trust: bool = False
    ) -> Iterator[Transaction]:
        """A write transaction on ``generation``, by default the current one (read inside the
        transaction, so a concurrent switch of generations is never written past).
        ``only_writer``: the caller is the only writer of ``generation`` (a rebuild before its
        switch), so documents and aggregates are not locked. ``trust``: take the generation
        the last transaction found current, and confirm it with the transaction's first read
        (on PostgreSQL, in the same round trip) rather than before it; if a switch happened
        since, that read raises :class:`GenerationSwitched` and nothing is written."""
        with self._cursor() as cursor:
            with self._transaction_statements(cursor):
                self._begin(cursor)
                confirm = None
                if generation is None:
                    generation, confirm = self._generation_to_write(cursor, trust)
                tx = self.transaction_type(
                    cursor,
                    generation,
                    self.placeholder,
                    "" if only_writer else self.row_lock,
                    None if only_writer else self.key_lock,
                    confirm,
                )
                yield tx
                tx.before_commit()
            tx.committed()  # on PostgreSQL, its statements' answers are in (the commit's too)

    def _generation_to_write(
        self, cursor: Cursor, trust: bool
    ) -> tuple[int, Callable[[], None] | None]:
        """The current generation, read and locked against a switch; with ``trust``, the one
        last found current and how to confirm it, where a dialect can read it later at no
        cost (PostgreSQL's pipeline)."""
        cursor.execute(self._current_generation_sql())
        row = cursor.fetchone()
        self._last_generation = int(row[0]) if row else 0
        return self._last_generation, None

    # --- reading ----------------------------------------------------------------------

    @overload
    def get(
        self, kind: Kind[D], key: str, generation: int | None = None
    ) -> StoredDoc[D] | None: ...

    @overload
    def get(
        self, kind: str, key: str, generation: int | None = None
    ) -> StoredDoc[Document] | None: ...

    def get(
        self, kind: Kind[Any] | str, key: str, generation: int | None = None
    ) -> StoredDoc[Any] | None:
        of = resolve(kind)
        _, rows = self._read(
            generation,
            "rm_docs",
            "d.centre_id, d.version, d.doc",
            "d.kind = ? AND d.key = ?",
            "",
            (of.name, key),
        )
        if not rows:
            return None
        row = rows[0]
        return StoredDoc(of, key, row[0], int(row[1]), of.decode(row[2]))

    @overload
    def docs(self, kind: Kind[D], generation: int | None = None) -> list[StoredDoc[D]]: ...

    @overload
    def docs(self, kind: str, generation: int | None = None) -> list[StoredDoc[Document]]: ...

    def docs(self, kind: Kind[Any] | str, generation: int | None = None) -> list[StoredDoc[Any]]:
        """Every document of ``kind``, by key."""
        of = resolve(kind)
        _, rows = self._read(
            generation,
            "rm_docs",
            "d.key, d.centre_id, d.version, d.doc",
            "d.kind = ?",
            "ORDER BY d.key",
            (of.name,),
        )
        return [StoredDoc(of, r[0], r[1], int(r[2]), of.decode(r[3])) for r in rows]

    @overload
    def centre_docs(
        self, kind: Kind[D], centre_id: str, generation: int | None = None
    ) -> list[StoredDoc[D]]: ...

    @overload
    def centre_docs(
        self, kind: str, centre_id: str, generation: int | None = None
    ) -> list[StoredDoc[Document]]: ...

    def centre_docs(
        self, kind: Kind[Any] | str, centre_id: str, generation: int | None = None
    ) -> list[StoredDoc[Any]]:
        """Every document of ``kind`` in one centre, by key."""
        of = resolve(kind)
        _, rows = self._read(
            generation,
            "rm_docs",
            "d.key, d.version, d.doc",
            "d.kind = ? AND d.centre_id = ?",
            "ORDER BY d.key",
            (of.name, centre_id),
        )
        return [StoredDoc(of, r[0], centre_id, int(r[1]), of.decode(r[2])) for r in rows]

    @overload
    def get_many(
        self, kind: Kind[D], keys: Sequence[str], generation: int | None = None
    ) -> dict[str, StoredDoc[D]]: ...

    @overload
    def get_many(
        self, kind: str, keys: Sequence[str], generation: int | None = None
    ) -> dict[str, StoredDoc[Document]]: ...

    def get_many(
        self, kind: Kind[Any] | str, keys: Sequence[str], generation: int | None = None
    ) -> dict[str, StoredDoc[Any]]:
        """The documents of ``kind`` among ``keys`` that exist."""
        of = resolve(kind)
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        for _ in range(_ATTEMPTS):
            # Each statement checks the generation it read; all must have read the same one.
            found: dict[str, StoredDoc[Any]] = {}
            read_in: set[int] = set()
            for condition, params in self._among(wanted):
                read, rows = self._read(
                    generation,
                    "rm_docs",
                    "d.key, d.centre_id, d.version, d.doc",
                    f"d.kind = ? AND {condition}",
                    "",
                    (of.name, *params),
                )
                read_in.add(read)
                found.update(
                    (r[0], StoredDoc(of, r[0], r[1], int(r[2]), of.decode(r[3]))) for r in rows
                )
            if len(read_in) == 1:
                return found
        raise GenerationUnsettled(_ATTEMPTS)

    def session_log(
        self, session_id: str, *, after: int = 0, limit: int = 1000, generation: int | None = None
    ) -> list[LogRow]:
        _, rows = self._read(
            generation,
            "rm_log",
            ", ".join(f"d.{column}" for column in LOG_COLUMNS.split(", ")),
            "d.session_id = ? AND d.notification_id > ?",
            "ORDER BY d.notification_id LIMIT ?",
            (session_id, after, limit),
        )
        return [log_row(r) for r in rows]

    def dump(self, generation: int) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of a generation, in a stable order: for comparing two generations."""
        with self._cursor() as cursor:
            out: dict[str, list[tuple[Any, ...]]] = {}
            for table, order in (
                ("rm_docs", "kind, key"),
                ("rm_log", "aggregate_id, aggregate_version"),
                ("rm_versions", "aggregate_id"),
            ):
                cursor.execute(f"SELECT * FROM {table}_{generation} ORDER BY {order}")
                out[table] = [tuple(r) for r in cursor.fetchall()]
            return out

    # --- one statement per read ---------------------------------------------------------

    _generation_seen = 0
    """The current generation as this store's last read found it (0: not read yet)."""

    def _read(
        self,
        generation: int | None,
        table: str,
        columns: str,
        condition: str,
        tail: str,
        params: Sequence[Any],
    ) -> tuple[int, list[Sequence[Any]]]:
        """:meth:`_read_on` a connection of the store; a read that failed on a connection the
        server had closed while it was idle in the pool (see :meth:`_read_again`) is made once
        more on another."""
        return self._reading(
            lambda cursor: self._read_on(
                cursor, generation, table, columns, condition, tail, params
            )
        )

    def _reading(self, read: Callable[[Cursor], R]) -> R:
        """``read`` on a connection of the store, once more on another if the first was closed
        by the server while it was idle in the pool (see :meth:`_read_again`)."""
        try:
            with self._cursor() as cursor:
                return read(cursor)
        except Exception as error:
            if not self._read_again(error):
                raise
        with self._cursor() as cursor:
            return read(cursor)

    def _read_again(self, error: BaseException) -> bool:
        """Whether a read that failed with ``error`` should be made once more (subclasses)."""
        return False

    def _read_on(
        self,
        cursor: Cursor,
        generation: int | None,
        table: str,
        columns: str,
        condition: str,
        tail: str,
        params: Sequence[Any],
    ) -> tuple[int, list[Sequence[Any]]]:
        """The rows of ``table`` (``rm_docs`` or ``rm_log``, aliased ``d``) that meet
        ``condition``, in ``generation`` or else the current one, and the generation read.

        The current generation costs no round trip of its own: the statement reads the tables of
        the generation seen last and, in the same snapshot, ``rm_meta``'s current generation
        (the documents are left-joined to that one row, so it comes back even when no document
        matches). If a rebuild has switched meanwhile, the rows are thrown away and read again
        from the generation the statement found, so a read never answers from a generation that
        was no longer current when it ran, and never mixes two. Tables of a generation that was
        dropped since are likewise read again from the current one. The first column of
        ``columns`` must be one that is never NULL in a stored row."""
        if generation:
            cursor.execute(
                self._sql(f"SELECT {columns} FROM {table}_{generation} d WHERE {condition} {tail}"),
                params,
            )
            return generation, cursor.fetchall()
        for _ in range(_ATTEMPTS):
            seen = self._generation_seen or self._meta(cursor, "generation")
            try:
                cursor.execute(
                    self._sql(
                        f"SELECT m.value, {columns} FROM rm_meta m LEFT JOIN {table}_{seen} d"
                        f" ON {condition} WHERE m.name = 'generation' {tail}"
                    ),
                    params,
                )
            except Exception as error:
                if not self._generation_seen or not self._is_missing_table(error):
                    raise
                self._generation_seen = 0  # dropped after a switch: read the current one
                continue
            rows = cursor.fetchall()
            current = int(rows[0][0]) if rows else 0
            if current == seen:
                self._generation_seen = seen
                return seen, [row[1:] for row in rows if row[1] is not None]
            self._generation_seen = current
            if not current:  # no generation yet: fail as a read of generation 0 does
                cursor.execute(
                    self._sql(f"SELECT {columns} FROM {table}_0 d WHERE {condition} {tail}"),
                    params,
                )
                return 0, cursor.fetchall()
        raise GenerationUnsettled(_ATTEMPTS)

    def _among(self, keys: list[str]) -> list[tuple[str, list[Any]]]:
        """A condition on ``d.key`` and its parameters for each statement reading ``keys``: a
        few hundred keys each (a dialect may do better)."""
        return [(f"d.key IN ({', '.join('?' * len(chunk))})", chunk) for chunk in chunks(keys)]

    def _is_missing_table(self, error: BaseException) -> bool:
        """Whether ``error`` says a table does not exist (subclasses)."""
        return False

    # --- dialect ------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    def _meta(self, cursor: Cursor, name: str) -> int:
        cursor.execute(self._sql("SELECT value FROM rm_meta WHERE name = ?"), (name,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, cursor: Cursor, name: str, value: int) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO rm_meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            (name, value),
        )

    def _current_generation_sql(self) -> str:
        return "SELECT value FROM rm_meta WHERE name = 'generation'"

    def _begin(self, cursor: Cursor) -> None:
        """Start a write transaction (subclasses)."""

    @contextmanager
    def _transaction_statements(self, cursor: Cursor) -> Iterator[None]:
        """Around a write transaction's statements, from BEGIN to the end of the caller's
        block (subclasses: how they travel to the database, and whether the commit travels
        with them; else ``_cursor`` commits)."""
        yield

    def _serialise_setup(self, cursor: Cursor) -> None:
        """Keep two processes from creating the tables at the same time (subclasses)."""

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        """Release connections."""
