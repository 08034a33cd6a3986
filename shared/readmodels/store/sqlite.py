"""The read store on SQLite (the default): one file in WAL mode, one writer at a time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from shared.http.problems import store_unavailable
from shared.readmodels.store.base import ReadStore
from shared.readmodels.store.transaction import Cursor


class SQLiteReadStore(ReadStore):
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, timeout=30, check_same_thread=False
            )
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

    def _missing(self, cursor: Cursor, tables: Sequence[str]) -> list[str]:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        present = {str(row[0]) for row in cursor.fetchall()}
        return [table for table in tables if table not in present]

    def _is_missing_table(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "no such table" in str(error)

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


_SQLITE_DISK_FAULTS = frozenset(
    {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY}
)
"""Primary result codes of a disk that fails the store, whatever the event."""
_SQLITE_DISK_MESSAGES = (
    "disk I/O error",
    "database or disk is full",
    "unable to open database file",
    "attempt to write a readonly database",
)
"""Their messages, for an error that carries no code."""
