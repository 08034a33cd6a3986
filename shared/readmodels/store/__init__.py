"""Where read models live: SQLite by default, PostgreSQL in production, as
:class:`ReadStoreSettings` say (``TUTORPULSE_READ_STORE``, ``TUTORPULSE_READ_SQLITE_PATH``,
``TUTORPULSE_READ_POSTGRES_*``, each of those defaulting to the event store's
``TUTORPULSE_POSTGRES_*`` value; every variable is in docs/settings.md). PostgreSQL connections
carry the event store's libpq parameters (``shared.eventstore.postgres.libpq_parameters``).

The tables, generations and exactly-once bookkeeping are described in
:mod:`shared.readmodels.store.base`.
"""

from __future__ import annotations

from shared.readmodels.store.base import ReadStore
from shared.readmodels.store.memory import MemoryTransaction
from shared.readmodels.store.postgres import PostgresReadStore, PostgresSettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.readmodels.store.sqlite import SQLiteReadStore
from shared.readmodels.store.transaction import (
    Cursor,
    Found,
    GenerationSwitched,
    Reads,
    SkipResult,
    StoredDoc,
    Transaction,
)


def open_read_store(settings: ReadStoreSettings) -> ReadStore:
    """The read store ``settings`` name, its tables ready (raises if it cannot be reached)."""
    if settings.store == "sqlite":
        store: ReadStore = SQLiteReadStore(settings.sqlite_path)
    else:
        postgres = PostgresSettings.of(settings)
        store = PostgresReadStore(
            postgres.conninfo,
            connect_timeout=postgres.connect_timeout,
            pre_ping=postgres.pre_ping,
            max_age=postgres.max_age,
        )
    store.creates_tables = settings.schema.create_tables
    try:
        store.ensure_ready()
    except BaseException:  # e.g. PostgreSQL is down: do not leave a pool retrying behind
        store.close()
        raise
    return store


__all__ = [
    "Cursor",
    "Found",
    "GenerationSwitched",
    "MemoryTransaction",
    "PostgresReadStore",
    "PostgresSettings",
    "ReadStore",
    "ReadStoreSettings",
    "Reads",
    "SQLiteReadStore",
    "SkipResult",
    "StoredDoc",
    "Transaction",
    "open_read_store",
]
