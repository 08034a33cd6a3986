"""Leadership of the relay: only one relay publishes from an event store at a time.

PostgreSQL: a session-level advisory lock held on a dedicated connection; it is released by the
server the moment the holder's connection dies, so a killed relay hands over at once.
SQLite: an exclusive ``flock`` on a file beside the database, released by the kernel when the
holder's process dies.

The relay confirms the lease before publishing more (every ``lease_confirm_seconds``, and after
any failure of the store), and gives it up when a call on the lock's connection is not answered
within ``TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS`` (a frozen or unreachable server):
:meth:`PostgresLease.abandon` shuts the connection down, the blocked call fails at once, and the
server releases the lock as soon as it sees the connection closed. A relay that vanished from
the network without closing anything is noticed by the server's own TCP keepalives, which the
lock's connection sets to the store's client-side ones (about 11 s) instead of the system's
default of two hours: until then no standby could take the lease.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.eventstore.postgres import KEEPALIVES, abort


class LeaseLost(Exception):
    """The relay can no longer prove it is the only publisher; it must stop publishing."""


class Lease(Protocol):
    def try_acquire(self) -> bool: ...

    def confirm(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is still held."""

    def release(self) -> None: ...

    def abandon(self) -> None:
        """From another thread: make a call blocked on the lease fail now (the holder can no
        longer prove it holds it)."""


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _server_keepalives(conninfo: str) -> str:
    """``conninfo`` with the server's TCP keepalives for the session set as the client's."""
    parameters = conninfo_to_dict(conninfo)
    ours = " ".join(
        f"-c tcp_{name}={value}" for name, value in KEEPALIVES.items() if name != "keepalives"
    )
    parameters["options"] = f"{parameters.get('options') or ''} {ours}".strip()
    return make_conninfo("", **parameters)


class PostgresLease:
    def __init__(self, conninfo: str, name: str) -> None:
        self._conninfo = _server_keepalives(conninfo)
        self._key = _lock_key(name)
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    def try_acquire(self) -> bool:
        if self._connection is None or self._connection.closed:
            # The connect timeout and keepalives come with the conninfo (postgres_conninfo).
            self._connection = psycopg.connect(self._conninfo, autocommit=True)
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        return bool(row and row[0])

    def confirm(self) -> None:
        try:
            if self._connection is None:
                raise LeaseLost("never acquired")
            # A session-level advisory lock lives exactly as long as its connection.
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise LeaseLost(f"lock connection failed: {error}") from error

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            try:
                connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            finally:
                connection.close()

    def abandon(self) -> None:
        abort(self._connection)


class FileLease:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return True

    def confirm(self) -> None:
        if self._fd is None:
            raise LeaseLost("never acquired")

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Nothing to do: a lock on a local file does not block."""
