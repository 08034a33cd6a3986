"""The key store: one data key per person of a centre, kept apart from the events.

A row of ``tutorpulse_person_keys``, keyed by (centre, person), holds the person's data key
wrapped by a master key (:mod:`shared.privacy.kms`). It lives in the event store's database
(the same SQLite file, or PostgreSQL database) and is created like the other tables: at start
when ``TUTORPULSE_CREATE_TABLES`` allows, else by ``python -m services.migrate``.

- :meth:`KeyStore.get_or_create` is atomic across processes: an ``INSERT … ON CONFLICT DO
  NOTHING`` then a read of the row, so two replicas making the same person's key at once both
  end with the one that was stored first.
- :meth:`KeyStore.destroy` is the erasure: the wrapped key is overwritten with NULL and the row
  becomes a tombstone (who erased, when, why), so "erased" (:class:`Erased`) stays
  distinguishable from "never had a key" (``None``) and no key is ever made for that person
  again (:class:`PersonErased`).
- Unwrapped keys are kept in a bounded in-process cache for ``key_cache_seconds``; a destroy
  drops the key from this process's cache at once, and another process stops using it at the
  latest ``key_cache_seconds`` later (it reads the row again then). A tombstone is kept for
  ever: erasure cannot be undone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
import psycopg
import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import ConnectionPool

from shared.eventstore.postgres import (
    LIBPQ_CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    answer_within,
    libpq_parameters,
)
from shared.eventstore.settings import EventStoreSettings
from shared.privacy.kms import KEY_BYTES, KeyWrapper, PrivacyConfigurationError, key_wrapper
from shared.privacy.settings import PrivacySettings
from shared.schema import MissingTables

log = structlog.get_logger(__name__)

TABLE = "tutorpulse_person_keys"

_COLUMNS = "key_id, master_key_id, wrapped_key, created_at, erased_at, erased_by, erasure_reason"


@dataclass(frozen=True)
class DataKey:
    """A person's data key, unwrapped. ``key_id`` names it in every ciphertext it made."""

    key_id: str
    secret: bytes = field(repr=False)
    aead: AESGCM = field(init=False, repr=False, compare=False)
    """The cipher for ``secret``, made once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "aead", AESGCM(self.secret))


@dataclass(frozen=True)
class Erased:
    """What is left of a person whose key was destroyed: who erased them, when and why."""

    erased_at: datetime
    erased_by: UUID
    reason: str
    key_id: str | None
    """The destroyed key's id (``None``: the person never had one)."""


class PersonErased(LookupError):
    """No key is made for a person who was erased."""

    def __init__(self, centre_id: str, person_id: UUID, erased: Erased) -> None:
        super().__init__(f"person {person_id} of centre {centre_id} was erased")
        self.erased = erased


@dataclass(frozen=True)
class _Row:
    key_id: str | None
    master_key_id: str | None
    wrapped_key: bytes | None
    created_at: datetime | None
    erased_at: datetime | None
    erased_by: UUID | None
    erasure_reason: str | None


def _row(found: tuple[Any, ...] | None, *, text: bool) -> _Row | None:
    """A selected row (``_COLUMNS``) as a :class:`_Row`; ``None`` where there was none.

    ``text``: the times and the eraser's id come as text (SQLite keeps them so); PostgreSQL
    gives them typed.
    """
    if found is None:
        return None
    key_id, master_key_id, wrapped, created, erased_at, erased_by, reason = found
    if text:
        created = None if created is None else datetime.fromisoformat(created)
        erased_at = None if erased_at is None else datetime.fromisoformat(erased_at)
        erased_by = None if erased_by is None else UUID(erased_by)
    return _Row(
        key_id,
        master_key_id,
        None if wrapped is None else bytes(wrapped),
        created,
        erased_at,
        erased_by,
        reason,
    )


def _context(centre_id: str, person_id: UUID, key_id: str) -> bytes:
    """What a wrapped key is bound to: its row and its id."""
    return msgspec.json.encode(["tutorpulse-data-key", centre_id, str(person_id), key_id])


def _new_key_id() -> str:
    return os.urandom(6).hex()


class _Backend(Protocol):
    def create_table(self) -> None: ...
    def has_table(self) -> bool: ...
    def insert_if_absent(self, values: tuple[Any, ...]) -> None: ...
    def select(self, centre_id: str, person_id: UUID) -> _Row | None: ...
    def tombstone(self, values: tuple[Any, ...]) -> None: ...
    def wrapped_by_others(self, master_key_id: str, limit: int) -> list[tuple[Any, ...]]: ...
    def rewrap(self, values: tuple[Any, ...]) -> int: ...
    def close(self) -> None: ...


_INSERT = (
    f"INSERT INTO {TABLE} (centre_id, person_id, {_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL) ON CONFLICT (centre_id, person_id) DO NOTHING"
)
_SELECT = f"SELECT {_COLUMNS} FROM {TABLE} WHERE centre_id = ? AND person_id = ?"
_TOMBSTONE = (
    f"INSERT INTO {TABLE} (centre_id, person_id, {_COLUMNS}) "
    "VALUES (?, ?, NULL, NULL, NULL, NULL, ?, ?, ?) ON CONFLICT (centre_id, person_id) DO UPDATE "
    "SET master_key_id = NULL, wrapped_key = NULL, erased_at = excluded.erased_at, "
    "erased_by = excluded.erased_by, erasure_reason = excluded.erasure_reason "
    f"WHERE {TABLE}.erased_at IS NULL"
)
_OTHERS = (
    f"SELECT centre_id, person_id, key_id, master_key_id, wrapped_key FROM {TABLE} "
    "WHERE wrapped_key IS NOT NULL AND master_key_id <> ? LIMIT ?"
)
_REWRAP = (
    f"UPDATE {TABLE} SET master_key_id = ?, wrapped_key = ? "
    "WHERE centre_id = ? AND person_id = ? AND master_key_id = ? AND wrapped_key IS NOT NULL"
)


class _Sqlite:
    """The table in the event store's SQLite file. ``secure_delete`` overwrites a destroyed
    key's bytes in the file instead of leaving them in a free page."""

    def __init__(self, settings: EventStoreSettings) -> None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(
            settings.sqlite_path,
            timeout=settings.sqlite_lock_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        self._connection.execute("PRAGMA journal_mode = WAL")
        self._connection.execute("PRAGMA secure_delete = ON")
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def create_table(self) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (centre_id TEXT NOT NULL, "
                "person_id TEXT NOT NULL, key_id TEXT, master_key_id TEXT, wrapped_key BLOB, "
                "created_at TEXT, erased_at TEXT, erased_by TEXT, erasure_reason TEXT, "
                "PRIMARY KEY (centre_id, person_id))"
            )

    def has_table(self) -> bool:
        with self._lock:
            found = self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            ).fetchone()
        return found is not None

    def insert_if_absent(self, values: tuple[Any, ...]) -> None:
        with self._transaction() as cursor:
            cursor.execute(_INSERT, self._out(values))

    def select(self, centre_id: str, person_id: UUID) -> _Row | None:
        with self._lock:
            found = self._connection.execute(_SELECT, (centre_id, str(person_id))).fetchone()
        return _row(found, text=True)

    def tombstone(self, values: tuple[Any, ...]) -> None:
        with self._transaction() as cursor:
            cursor.execute(_TOMBSTONE, self._out(values))
        with self._lock:
            # The old page (with the wrapped key) leaves the WAL for the zeroed one.
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def wrapped_by_others(self, master_key_id: str, limit: int) -> list[tuple[Any, ...]]:
        with self._lock:
            rows = self._connection.execute(_OTHERS, (master_key_id, limit)).fetchall()
        return [(c, UUID(p), k, m, bytes(w)) for c, p, k, m, w in rows]

    def rewrap(self, values: tuple[Any, ...]) -> int:
        with self._transaction() as cursor:
            cursor.execute(_REWRAP, self._out(values))
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @staticmethod
    def _out(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            value.isoformat()
            if isinstance(value, datetime)
            else str(value)
            if isinstance(value, UUID)
            else value
            for value in values
        )


class _Postgres:
    """The table in the event store's PostgreSQL database, through a small pool of its own."""

    def __init__(self, settings: EventStoreSettings) -> None:
        parameters = libpq_parameters(
            {
                LIBPQ_CONNECT_TIMEOUT: str(settings.postgres_connect_timeout),
                STATEMENT_TIMEOUT: f"{settings.postgres_statement_timeout:g}",
            }
        )
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            kwargs={
                "host": settings.postgres_host,
                "port": settings.postgres_port,
                "dbname": settings.postgres_dbname,
                "user": settings.postgres_user,
                "password": settings.postgres_password or None,
                **parameters,
            },
            min_size=1,
            max_size=max(1, min(settings.postgres_pool_size, 4)),
            timeout=settings.postgres_connect_timeout,
            check=ConnectionPool.check_connection if settings.postgres_pre_ping else None,
            open=True,
            name="person-keys",
        )
        answer_within(self._pool, settings.postgres_answer_timeout)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            yield cursor

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.replace("?", "%s")

    def create_table(self) -> None:
        statement = (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (centre_id TEXT NOT NULL, "
            "person_id UUID NOT NULL, key_id TEXT, master_key_id TEXT, wrapped_key BYTEA, "
            "created_at TIMESTAMPTZ, erased_at TIMESTAMPTZ, erased_by UUID, erasure_reason TEXT, "
            "PRIMARY KEY (centre_id, person_id))"
        )
        for attempt in range(1, 6):
            try:
                with self._transaction() as cursor:
                    cursor.execute(statement)
                return
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                # Another replica created it at the same moment: it is there now.
                if attempt == 5:
                    raise
                time.sleep(0.1 * attempt)

    def has_table(self) -> bool:
        with self._transaction() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (TABLE,))
            found = cursor.fetchone()
        return found is not None and found[0] is not None

    def insert_if_absent(self, values: tuple[Any, ...]) -> None:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_INSERT), values)

    def select(self, centre_id: str, person_id: UUID) -> _Row | None:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_SELECT), (centre_id, person_id))
            found = cursor.fetchone()
        return _row(found, text=False)

    def tombstone(self, values: tuple[Any, ...]) -> None:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_TOMBSTONE), values)

    def wrapped_by_others(self, master_key_id: str, limit: int) -> list[tuple[Any, ...]]:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_OTHERS), (master_key_id, limit))
            return [(c, p, k, m, bytes(w)) for c, p, k, m, w in cursor.fetchall()]

    def rewrap(self, values: tuple[Any, ...]) -> int:
        with self._transaction() as cursor:
            cursor.execute(self._sql(_REWRAP), values)
            return cursor.rowcount

    def close(self) -> None:
        self._pool.close()


def _backend(settings: EventStoreSettings) -> _Backend:
    return _Sqlite(settings) if settings.store == "sqlite" else _Postgres(settings)


def create_key_table(settings: EventStoreSettings) -> None:
    """The key store's table in the event store's database, created if missing (for
    ``python -m services.migrate``, whatever ``TUTORPULSE_CREATE_TABLES`` says)."""
    backend = _backend(settings)
    try:
        backend.create_table()
    finally:
        backend.close()


class _Cache:
    """Unwrapped keys by (centre, person), at most ``size``, each used for ``seconds`` before
    its row is read again; a tombstone is kept without limit of time (erasure is final)."""

    def __init__(self, size: int, seconds: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._seconds = seconds
        self._clock = clock
        self._entries: OrderedDict[tuple[str, UUID], tuple[DataKey | Erased, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, centre_id: str, person_id: UUID) -> DataKey | Erased | None:
        with self._lock:
            entry = self._entries.get((centre_id, person_id))
            if entry is None:
                return None
            value, until = entry
            if isinstance(value, DataKey) and self._clock() >= until:
                del self._entries[(centre_id, person_id)]
                return None
            self._entries.move_to_end((centre_id, person_id))
            return value

    def put(self, centre_id: str, person_id: UUID, value: DataKey | Erased) -> None:
        if self._size == 0:
            return
        with self._lock:
            kept = self._entries.get((centre_id, person_id))
            if kept is not None and isinstance(kept[0], Erased):
                # A read that began before the erasure must not bring the key back.
                return
            self._entries[(centre_id, person_id)] = (value, self._clock() + self._seconds)
            self._entries.move_to_end((centre_id, person_id))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class KeyStore:
    """Per-person data keys (see the module's doc). Thread-safe; one per process."""

    def __init__(
        self,
        event_store: EventStoreSettings,
        privacy: PrivacySettings,
        wrapper: KeyWrapper,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = _backend(event_store)
        try:
            if event_store.schema.create_tables:
                self._backend.create_table()
            elif not self._backend.has_table():
                raise MissingTables("key store", [TABLE])
        except BaseException:
            self._backend.close()
            raise
        self._wrapper = wrapper
        self._cache = _Cache(privacy.key_cache_size, privacy.key_cache_seconds, clock)

    def close(self) -> None:
        self._backend.close()

    def get_or_create(self, centre_id: str, person_id: UUID) -> DataKey:
        """The person's key, made and stored first if they have none; :class:`PersonErased`
        if they were erased."""
        found = self._cached_or_read(centre_id, person_id)
        if found is None:
            key_id = _new_key_id()
            secret = os.urandom(KEY_BYTES)
            master_key_id, wrapped = self._wrapper.wrap(
                secret, _context(centre_id, person_id, key_id)
            )
            self._backend.insert_if_absent(
                (centre_id, person_id, key_id, master_key_id, wrapped, datetime.now(UTC))
            )
            found = self._read(centre_id, person_id)
        if isinstance(found, Erased):
            raise PersonErased(centre_id, person_id, found)
        if found is None:
            raise AssertionError("the person's key row vanished right after it was stored")
        return found

    def fetch(self, centre_id: str, person_id: UUID) -> DataKey | Erased | None:
        """The person's key; :class:`Erased` if it was destroyed; ``None`` if they never had
        one."""
        return self._cached_or_read(centre_id, person_id)

    def destroy(self, centre_id: str, person_id: UUID, *, erased_by: UUID, reason: str) -> Erased:
        """Erase the person: their key's bytes are overwritten for good and a tombstone kept
        (made even if they had no key, so none is made later). Erasing again changes nothing
        and returns the first erasure."""
        if not reason.strip():
            raise ValueError("an erasure needs a reason")
        self._backend.tombstone(
            (centre_id, person_id, datetime.now(UTC), erased_by, reason.strip())
        )
        found = self._read(centre_id, person_id)
        if not isinstance(found, Erased):
            raise AssertionError("the person's key row is not a tombstone after erasure")
        return found

    def probe(self) -> None:
        """Read the key table (for ``/ready``): raises while it cannot be reached."""
        self._backend.select("", UUID(int=0))

    def rewrap(self, batch: int = 500) -> int:
        """Re-wrap every key wrapped by a master key other than the current one (after a
        rotation); how many were re-wrapped. A key unwraps the same after it."""
        current = self._wrapper.current_key_id
        done = 0
        while rows := self._backend.wrapped_by_others(current, batch):
            for centre_id, person_id, key_id, master_key_id, wrapped in rows:
                context = _context(centre_id, person_id, key_id)
                secret = self._wrapper.unwrap(master_key_id, wrapped, context)
                new_master, rewrapped = self._wrapper.wrap(secret, context)
                done += self._backend.rewrap(
                    (new_master, rewrapped, centre_id, person_id, master_key_id)
                )
        return done

    def _cached_or_read(self, centre_id: str, person_id: UUID) -> DataKey | Erased | None:
        cached = self._cache.get(centre_id, person_id)
        if cached is not None:
            return cached
        return self._read(centre_id, person_id)

    def _read(self, centre_id: str, person_id: UUID) -> DataKey | Erased | None:
        row = self._backend.select(centre_id, person_id)
        if row is None:
            return None
        value: DataKey | Erased
        if row.erased_at is not None:
            value = Erased(
                erased_at=row.erased_at,
                erased_by=row.erased_by or UUID(int=0),
                reason=row.erasure_reason or "",
                key_id=row.key_id,
            )
        else:
            if row.key_id is None or row.master_key_id is None or row.wrapped_key is None:
                raise AssertionError(f"the key row of person {person_id} is incomplete")
            secret = self._wrapper.unwrap(
                row.master_key_id, row.wrapped_key, _context(centre_id, person_id, row.key_id)
            )
            value = DataKey(row.key_id, secret)
        self._cache.put(centre_id, person_id, value)
        return value


def open_key_store(
    service: str, event_store: EventStoreSettings, privacy: PrivacySettings, *, dev_mode: bool
) -> KeyStore:
    """What a service that reads or writes personal data calls while starting: its key store,
    or the :class:`PrivacyConfigurationError` that stops the start (logged as
    ``privacy.misconfigured``), as :func:`shared.tenancy.tokens.check_at_start` does for
    tokens. ``dev_mode`` is ``TUTORPULSE_DEV_MODE`` (``JwtSettings.dev_mode``)."""
    return key_store_opener(service, event_store, privacy, dev_mode=dev_mode)()


def key_store_opener(
    service: str, event_store: EventStoreSettings, privacy: PrivacySettings, *, dev_mode: bool
) -> Callable[[], KeyStore]:
    """As :func:`open_key_store`, for a service that opens its key store later (once its
    database answers): the master keys are checked now, so a misconfiguration still stops the
    start."""
    try:
        wrapper = key_wrapper(privacy, dev_mode=dev_mode)
    except PrivacyConfigurationError as error:
        log.error("privacy.misconfigured", service=service, error=str(error))
        raise
    return lambda: KeyStore(event_store, privacy, wrapper)
