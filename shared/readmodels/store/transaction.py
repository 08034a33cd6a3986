"""One atomic unit of read-model changes, and the rows it reads and writes."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, overload

import msgspec

from shared.readmodels.documents import D, Document, Kind, LogRow, encode, kind_named

_encode_event = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True)
class StoredDoc(Generic[D]):
    """A document as the store holds it: its kind and key, its centre, and its version (the
    number of events that touched it)."""

    kind: Kind[D]
    key: str
    centre_id: str
    version: int
    doc: D


class Cursor(Protocol):
    def execute(self, query: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, query: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def chunks(items: list[str], size: int = 400) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def docs_among(
    cursor: Cursor, sql: Callable[[str], str], table: str, kind: Kind[D], keys: Sequence[str]
) -> list[StoredDoc[D]]:
    """The stored documents of ``kind`` among ``keys``, a few hundred keys per query."""
    found = []
    for chunk in chunks(list(keys)):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            sql(
                f"SELECT key, centre_id, version, doc FROM {table} "
                f"WHERE kind = ? AND key IN ({marks})"
            ),
            (kind.name, *chunk),
        )
        found += [
            StoredDoc(kind, row[0], row[1], int(row[2]), kind.decode(row[3]))
            for row in cursor.fetchall()
        ]
    return found


def log_row(row: Sequence[Any]) -> LogRow:
    """A log row from its columns (``LOG_COLUMNS``)."""
    return LogRow(
        notification_id=int(row[0]),
        session_id=row[1],
        centre_id=row[2],
        aggregate_id=row[3],
        aggregate_version=int(row[4]),
        occurred_at=row[5],
        event_type=row[6],
        actor_id=row[7],
        actor_role=row[8],
        event=msgspec.json.decode(row[9]),
    )


LOG_COLUMNS = (
    "notification_id, session_id, centre_id, aggregate_id, aggregate_version, "
    "occurred_at, event_type, actor_id, actor_role, event"
)


def resolve(kind: Kind[D] | str) -> Kind[D] | Kind[Document]:
    """A kind given as itself, or by name (operators' scripts, tests)."""
    return kind if isinstance(kind, Kind) else kind_named(kind)


WATERMARK_UPSERT = (
    "INSERT INTO rm_meta (name, value) VALUES ('watermark', ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value "
    "WHERE excluded.value > rm_meta.value"
)
"""Moves the watermark forward, never back (``rm_meta`` is not a generation's)."""


class SkipResult(enum.Enum):
    """What recording a dead-lettered event did to its aggregate."""

    SKIPPED = "skipped"
    """Counted as in: the aggregate's later events apply."""
    PENDING = "pending"
    """An earlier event of the aggregate is missing too: remembered, the version unchanged."""
    APPLIED = "applied"
    """The event is in the read models already (another replica applied it)."""


@dataclass(frozen=True)
class Reads:
    """What a projection batch reads at one step: on PostgreSQL the locks of all of it are one
    statement and every query goes in the same round trip (:meth:`Transaction.read`)."""

    docs: Mapping[Kind[Any], Collection[str]] = field(default_factory=dict)
    """Documents by kind and key, locked."""
    aggregates: Collection[str] = ()
    """Aggregates whose applied version is wanted, locked."""
    versions: Mapping[Kind[Any], Collection[str]] = field(default_factory=dict)
    """Documents whose stored version alone is wanted, locked."""
    skipped: Collection[str] = ()
    """Aggregates whose dead-lettered versions are wanted (:meth:`Transaction.skipped_versions`;
    locked by whoever read their applied version)."""


@dataclass
class Found:
    """The answers to :class:`Reads`: ``None`` for a missing document, 0 for an unknown version."""

    docs: dict[tuple[str, str], StoredDoc[Any] | None]
    aggregates: dict[str, int]
    versions: dict[tuple[str, str], int]
    skipped: dict[str, list[int]]


def passed(versions: Mapping[str, int], skipped: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """For each aggregate at the given version, the version it reaches by passing the
    dead-lettered versions right after it (``skipped``: each aggregate's, in ascending order)."""
    reached = dict(versions)
    for aggregate_id, dead_lettered in skipped.items():
        for version in dead_lettered:
            if version == reached[aggregate_id] + 1:
                reached[aggregate_id] = version
    return reached


class GenerationSwitched(RuntimeError):
    """The generation a transaction took on trust is no longer the current one (a rebuild
    switched since): the transaction wrote nothing, and the next one reads the generation."""

    def __init__(self, trusted: int, current: int) -> None:
        super().__init__(f"generation {current} is current, not {trusted}")


class _Confirming:
    """A cursor whose first answer, or first failure, also confirms the transaction's
    generation (a switch explains a failure: a rebuild drops the tables it replaced)."""

    def __init__(self, cursor: Cursor, confirm: Callable[[], None]) -> None:
        self._real = cursor
        self._confirm = confirm

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._real.execute(query, params)
        except Exception:
            self._confirm()
            raise

    def executemany(self, query: str, params: Sequence[Sequence[Any]]) -> Any:
        try:
            return self._real.executemany(query, params)
        except Exception:
            self._confirm()
            raise

    def fetchone(self) -> Any:
        try:
            row = self._real.fetchone()
        finally:
            self._confirm()
        return row

    def fetchall(self) -> list[Any]:
        try:
            rows = self._real.fetchall()
        finally:
            self._confirm()
        return rows


class Transaction:
    """One atomic unit of read-model changes in one generation.

    ``confirm``: the generation was taken on trust (``ReadStore.transaction(trust=True)``);
    called before the first answer is used and before the commit, it raises
    :class:`GenerationSwitched` if the generation is not the current one."""

    def __init__(
        self,
        cursor: Cursor,
        generation: int,
        placeholder: str,
        lock: str,
        key_lock: str | None,
        confirm: Callable[[], None] | None = None,
    ) -> None:
        self._confirm = confirm
        self._cursor: Cursor = cursor if confirm is None else _Confirming(cursor, self._confirmed)
        self._dialect_cursor = cursor
        """The store's own cursor, for what a dialect does beyond :class:`Cursor`."""
        self.generation = generation
        self._p = placeholder
        self._lock = lock
        self._key_lock = key_lock

    def _confirmed(self) -> None:
        """Raise :class:`GenerationSwitched` unless the generation is the current one (once)."""
        confirm, self._confirm = self._confirm, None
        if confirm is not None:
            confirm()

    def before_commit(self) -> None:
        self._confirmed()

    def _lock_key(self, name: str) -> None:
        """Serialise writers of one document or aggregate, even before its row exists."""
        self._lock_keys([name])

    def _lock_keys(self, names: Sequence[str]) -> None:
        if self._key_lock is not None and names:
            # One statement, in one order for every batch. A batch that needs a key it did not
            # prefetch locks it later, so two batches can still deadlock: PostgreSQL then aborts
            # one, which is retried (``transient_errors``).
            self._cursor.execute(
                self._key_lock, (sorted(f"{self.generation}:{name}" for name in names),)
            )

    def _q(self, sql: str) -> str:
        return sql.replace("{g}", str(self.generation)).replace("?", self._p)

    def aggregate_versions(self, aggregate_ids: Sequence[str]) -> dict[str, int]:
        """The applied version of many aggregates (0 for unknown ones), locking them all."""
        return self._versions(
            [f"aggregate:{a}" for a in aggregate_ids],
            aggregate_ids,
            "SELECT aggregate_id, version FROM rm_versions_{g} WHERE aggregate_id IN ({marks})",
            (),
        )

    def _versions(
        self, locks: list[str], keys: Sequence[str], sql: str, leading: tuple[str, ...]
    ) -> dict[str, int]:
        """The stored versions of ``keys`` (0 for missing ones) by ``sql`` (``{marks}``: a
        chunk of keys' placeholders, after the ``leading`` parameters), after locking
        ``locks``."""
        self._lock_keys(locks)
        found = dict.fromkeys(keys, 0)
        for chunk in chunks(list(keys)):
            marks = ", ".join("?" * len(chunk))
            self._cursor.execute(self._q(sql.replace("{marks}", marks)), (*leading, *chunk))
            found.update({row[0]: int(row[1]) for row in self._cursor.fetchall()})
        return found

    def aggregate_version(self, aggregate_id: str) -> int:
        self._lock_key(f"aggregate:{aggregate_id}")
        self._cursor.execute(
            self._q(f"SELECT version FROM rm_versions_{{g}} WHERE aggregate_id = ?{self._lock}"),
            (aggregate_id,),
        )
        row = self._cursor.fetchone()
        return int(row[0]) if row else 0

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        self._cursor.executemany(
            self._q(
                "INSERT INTO rm_versions_{g} (aggregate_id, version) VALUES (?, ?) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"
            ),
            versions,
        )

    @overload
    def get(self, kind: Kind[D], key: str) -> StoredDoc[D] | None: ...

    @overload
    def get(self, kind: str, key: str) -> StoredDoc[Document] | None: ...

    def get(self, kind: Kind[Any] | str, key: str) -> StoredDoc[Any] | None:
        of = resolve(kind)
        self._lock_key(f"{of.name}:{key}")
        self._cursor.execute(
            self._q(
                "SELECT centre_id, version, doc FROM rm_docs_{g} "
                f"WHERE kind = ? AND key = ?{self._lock}"
            ),
            (of.name, key),
        )
        row = self._cursor.fetchone()
        if row is None:
            return None
        return StoredDoc(of, key, row[0], int(row[1]), of.decode(row[2]))

    @overload
    def get_many(self, kind: Kind[D], keys: Sequence[str]) -> dict[str, StoredDoc[D] | None]: ...

    @overload
    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, StoredDoc[Document] | None]: ...

    def get_many(
        self, kind: Kind[Any] | str, keys: Sequence[str]
    ) -> dict[str, StoredDoc[Any] | None]:
        """Many documents of one kind at once (``None`` for missing ones), locking them all."""
        of = resolve(kind)
        self._lock_keys([f"{of.name}:{k}" for k in keys])
        found: dict[str, StoredDoc[Any] | None] = dict.fromkeys(keys)
        found.update({d.key: d for d in docs_among(self._cursor, self._q, "rm_docs_{g}", of, keys)})
        return found

    def doc_versions(self, kind: Kind[Any] | str, keys: Sequence[str]) -> dict[str, int]:
        """The stored version of many documents of one kind (0 for missing ones), locking them
        all, without reading (or decoding) the documents themselves."""
        of = resolve(kind)
        return self._versions(
            [f"{of.name}:{k}" for k in keys],
            keys,
            "SELECT key, version FROM rm_docs_{g} WHERE kind = ? AND key IN ({marks})",
            (of.name,),
        )

    def put_many(self, docs: Sequence[StoredDoc[Any]]) -> None:
        self.put_rows(doc_rows(docs))

    def put_rows(self, rows: Sequence[DocRow]) -> None:
        """Write documents already encoded (:func:`doc_rows`)."""
        self._cursor.executemany(
            self._q(
                "INSERT INTO rm_docs_{g} (kind, key, centre_id, version, doc)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, key)"
                " DO UPDATE SET version = excluded.version, doc = excluded.doc"
            ),
            rows,
        )

    def put_counted(
        self,
        docs: Sequence[StoredDoc[Any]],
        settled: Callable[[dict[tuple[str, str], int]], None],
    ) -> None:
        """Write documents put whole without a read: each ``StoredDoc.version`` is the number
        of events that touched it, and it is stored at its stored version (0 for a new one)
        plus that, locked. ``settled`` gets the version each was stored at (by kind's name and
        key) once the transaction commits, or sooner."""
        by_kind: dict[str, list[StoredDoc[Any]]] = {}
        for doc in docs:
            by_kind.setdefault(doc.kind.name, []).append(doc)
        stored: dict[tuple[str, str], int] = {}
        for of_kind in by_kind.values():
            found = self.doc_versions(of_kind[0].kind, sorted(d.key for d in of_kind))
            stored.update(((d.kind.name, d.key), found[d.key] + d.version) for d in of_kind)
        self.put_many(
            [
                StoredDoc(d.kind, d.key, d.centre_id, stored[(d.kind.name, d.key)], d.doc)
                for d in docs
            ]
        )
        settled(stored)

    def set_versions_past_skipped(self, versions: Sequence[tuple[str, int]]) -> None:
        """Set each aggregate's version to the given one, passed the dead-lettered versions
        right after it (recorded while an earlier event was missing: the next one applies)."""
        self.set_aggregate_versions(list(self.past_skipped(dict(versions)).items()))

    def committed(self) -> None:
        """The transaction committed (:meth:`put_counted` settles here on PostgreSQL)."""

    def advance_watermark(self, notification_id: int) -> None:
        """Move the watermark to ``notification_id`` when this transaction commits, unless it
        is there or past it already (another replica may have moved it further): the live
        projection records it with the batch that took it there, so a query waiting for it
        sees it at that batch's commit. On PostgreSQL it travels with the commit."""
        self._cursor.execute(self._q(WATERMARK_UPSERT), (notification_id,))

    def make_current(self) -> None:
        """Make this transaction's generation the one queries read, when it commits."""
        self._cursor.execute(self._q("UPDATE rm_meta SET value = {g} WHERE name = 'generation'"))

    def skip(
        self, aggregate_id: str, version: int, notification_id: int, event_type: str, reason: str
    ) -> SkipResult:
        """Record that this event of the aggregate was dead-lettered. If it is the next version
        of its aggregate, the aggregate's version moves past it (and past later versions that
        were dead-lettered before it), so the aggregate's later events apply."""
        current = self.aggregate_version(aggregate_id)  # locks the aggregate
        if current >= version and not self.is_skipped(aggregate_id, version):
            return SkipResult.APPLIED
        self._cursor.execute(
            self._q(
                "INSERT INTO rm_skipped_{g} (aggregate_id, version, notification_id, event_type, "
                "reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (aggregate_id, version) DO NOTHING"
            ),
            (aggregate_id, version, notification_id, event_type, reason),
        )
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
        dead-lettered versions right after it (recorded while an earlier event was missing)."""
        return passed(versions, self.skipped_versions(sorted(versions)))

    def skipped_versions(self, aggregate_ids: Sequence[str]) -> dict[str, list[int]]:
        """The dead-lettered versions of each of ``aggregate_ids`` that have any, in ascending
        order, in a query per few hundred aggregates."""
        found: dict[str, list[int]] = {}
        for chunk in chunks(list(aggregate_ids)):
            marks = ", ".join("?" * len(chunk))
            self._cursor.execute(
                self._q(
                    "SELECT aggregate_id, version FROM rm_skipped_{g} "
                    f"WHERE aggregate_id IN ({marks}) ORDER BY aggregate_id, version"
                ),
                chunk,
            )
            for aggregate_id, version in self._cursor.fetchall():
                found.setdefault(aggregate_id, []).append(int(version))
        return found

    def read(self, wanted: Reads) -> Found:
        """Everything ``wanted`` names, each read as its own method reads it."""
        docs: dict[tuple[str, str], StoredDoc[Any] | None] = {}
        for kind, keys in wanted.docs.items():
            if keys:
                found = self.get_many(kind, sorted(keys))
                docs.update(((kind.name, key), stored) for key, stored in found.items())
        versions: dict[tuple[str, str], int] = {}
        for kind, keys in wanted.versions.items():
            if keys:
                of_kind = self.doc_versions(kind, sorted(keys))
                versions.update(((kind.name, key), version) for key, version in of_kind.items())
        return Found(
            docs=docs,
            aggregates=(
                self.aggregate_versions(sorted(wanted.aggregates)) if wanted.aggregates else {}
            ),
            versions=versions,
            skipped=self.skipped_versions(sorted(wanted.skipped)) if wanted.skipped else {},
        )

    def is_skipped(self, aggregate_id: str, version: int) -> bool:
        self._cursor.execute(
            self._q("SELECT 1 FROM rm_skipped_{g} WHERE aggregate_id = ? AND version = ?"),
            (aggregate_id, version),
        )
        return self._cursor.fetchone() is not None

    def skipped_between(self, aggregate_id: str, after: int, through: int) -> int:
        """How many versions of the aggregate in ``(after, through]`` were dead-lettered."""
        self._cursor.execute(
            self._q(
                "SELECT COUNT(*) FROM rm_skipped_{g} WHERE aggregate_id = ? AND version > ? "
                "AND version <= ?"
            ),
            (aggregate_id, after, through),
        )
        row = self._cursor.fetchone()
        return int(row[0]) if row else 0

    def forget_skip(self, aggregate_id: str, version: int) -> None:
        """The dead-lettered event was replayed or discarded."""
        self._cursor.execute(
            self._q("DELETE FROM rm_skipped_{g} WHERE aggregate_id = ? AND version = ?"),
            (aggregate_id, version),
        )

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        self._cursor.executemany(
            self._q(
                "INSERT INTO rm_log_{g} (aggregate_id, aggregate_version, session_id, centre_id, "
                "notification_id, occurred_at, event_type, actor_id, actor_role, event) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            log_rows(rows),
        )


DocRow = tuple[str, str, str, int, str]
"""A document as ``rm_docs`` columns: kind, key, centre, version, JSON."""


def doc_rows(docs: Sequence[StoredDoc[Any]]) -> list[DocRow]:
    """The ``rm_docs`` columns of each document (kind, key, centre, version, JSON)."""
    return [(d.kind.name, d.key, d.centre_id, d.version, encode(d.doc)) for d in docs]


def log_rows(
    rows: Sequence[LogRow],
) -> list[tuple[str, int, str, str, int, str, str, str, str, str]]:
    """The ``rm_log`` columns of each row, in the order of its ``INSERT``."""
    return [
        (
            row.aggregate_id,
            row.aggregate_version,
            row.session_id,
            row.centre_id,
            row.notification_id,
            row.occurred_at,
            row.event_type,
            row.actor_id,
            row.actor_role,
            _encode_event.encode(row.event).decode(),
        )
        for row in rows
    ]
