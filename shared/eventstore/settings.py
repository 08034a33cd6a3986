"""The event store's settings: where events are kept, and how PostgreSQL is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.settings import setting


@dataclass(frozen=True)
class SchemaSettings:
    """Whether the stores create their tables at start (see :mod:`shared.schema`)."""

    create_tables: bool = setting(
        "TUTORPULSE_CREATE_TABLES",
        True,
        "the stores create their missing tables at start (the event store's events, snapshots "
        "and tracking, the read store's meta table and first generation); no: they create "
        "nothing and a missing table stops the service, for a role that may only read and write "
        "rows once `python -m services.migrate` made them (which, like a rebuild's new generation, "
        "creates its tables whatever this says)",
    )


@dataclass(frozen=True)
class EventStoreSettings:
    store: Literal["sqlite", "postgres"] = setting(
        "TUTORPULSE_STORE", "sqlite", "where events are kept: `sqlite` or `postgres`"
    )
    sqlite_path: Path = setting(
        "TUTORPULSE_SQLITE_PATH",
        Path("var/tutorpulse.sqlite"),
        "the event store's SQLite file (WAL mode; its folder is created)",
    )
    sqlite_lock_timeout: int = setting(
        "TUTORPULSE_SQLITE_LOCK_TIMEOUT", 10, "seconds a writer waits for SQLite's lock", minimum=0
    )
    postgres_host: str = setting(
        "TUTORPULSE_POSTGRES_HOST", "127.0.0.1", "the event store's PostgreSQL server"
    )
    postgres_port: int = setting(
        "TUTORPULSE_POSTGRES_PORT",
        5432,
        "the event store's PostgreSQL port",
        minimum=1,
        maximum=65535,
    )
    postgres_dbname: str = setting(
        "TUTORPULSE_POSTGRES_DBNAME", "tutorpulse", "the event store's PostgreSQL database"
    )
    postgres_user: str = setting(
        "TUTORPULSE_POSTGRES_USER", "tutorpulse", "the event store's PostgreSQL user"
    )
    postgres_password: str = setting(
        "TUTORPULSE_POSTGRES_PASSWORD",
        "",
        "that user's password (secret `tutorpulse-secrets`)",
        secret=True,
    )
    postgres_pool_size: int = setting(
        "TUTORPULSE_POSTGRES_POOL_SIZE", 5, "connections kept per process", minimum=1
    )
    postgres_max_overflow: int = setting(
        "TUTORPULSE_POSTGRES_MAX_OVERFLOW",
        10,
        "connections opened beyond the pool under load",
        minimum=0,
    )
    postgres_lock_timeout: int = setting(
        "TUTORPULSE_POSTGRES_LOCK_TIMEOUT",
        5,
        "seconds a writer waits for the events table lock",
        minimum=0,
    )
    postgres_connect_timeout: int = setting(
        "TUTORPULSE_POSTGRES_CONNECT_TIMEOUT",
        3,
        "whole seconds a call waits for a pooled connection, and opening one may take (libpq "
        "`connect_timeout`, at least 2): with PostgreSQL down a command is a 503 after this long",
        minimum=1,
    )
    postgres_statement_timeout: float = setting(
        "TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT",
        5.0,
        "seconds the server lets one statement run (`statement_timeout`; 0 keeps the server's)",
        minimum=0,
    )
    postgres_answer_timeout: float = setting(
        "TUTORPULSE_POSTGRES_ANSWER_TIMEOUT",
        6.0,
        "seconds a process holds a pooled connection waiting for PostgreSQL (a statement, a "
        "commit, the pre-ping), counted on the client: past it the connection is shut down and "
        "the call fails (a command is a 503). A frozen server never fires its statement timeout; "
        "keep this above that and the lock timeout, so a server that is only slow answers first. "
        "The query service's read store waits this long too; 0: no limit",
        minimum=0,
    )
    postgres_pre_ping: bool = setting(
        "TUTORPULSE_POSTGRES_PRE_PING",
        True,
        "check a pooled connection before use when it has been idle for a second or more; the "
        "first dead one found makes the pool check all of them, so a PostgreSQL restart costs "
        "no failed request",
    )
    postgres_conn_max_age: float = setting(
        "TUTORPULSE_POSTGRES_CONN_MAX_AGE",
        1800.0,
        "seconds before a pooled connection is replaced",
        minimum=1,
    )
    postgres_max_waiting: int = setting(
        "TUTORPULSE_POSTGRES_MAX_WAITING",
        0,
        "calls that may queue for a connection (0: no limit); past it, a 503 at once",
        minimum=0,
    )
    postgres_idle_in_transaction_timeout: int = setting(
        "TUTORPULSE_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT",
        5,
        "seconds the server keeps a transaction left open by a client",
        minimum=0,
    )
    schema: SchemaSettings = field(default_factory=SchemaSettings)
    """Whether the events, snapshots and tracking tables are created at start."""
