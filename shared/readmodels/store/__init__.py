"""Where read models live: SQLite by default, PostgreSQL in production.

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

The tables, generations and exactly-once bookkeeping are described in
:mod:`shared.readmodels.store.base`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shared.readmodels.store.base import ReadStore
from shared.readmodels.store.memory import MemoryTransaction
from shared.readmodels.store.postgres import PostgresReadStore, PostgresSettings
from shared.readmodels.store.sqlite import SQLiteReadStore
from shared.readmodels.store.transaction import Cursor, SkipResult, StoredDoc, Transaction


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




__all__ = [
    "Cursor",
    "MemoryTransaction",
    "PostgresReadStore",
    "PostgresSettings",
    "ReadStore",
    "SQLiteReadStore",
    "SkipResult",
    "StoredDoc",
    "Transaction",
    "open_read_store",
]
