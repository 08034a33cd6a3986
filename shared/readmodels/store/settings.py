"""The read-model store's settings. On PostgreSQL each defaults to the event store's
``TUTORPULSE_POSTGRES_*`` value, so one database server needs to be named only once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.eventstore.settings import SchemaSettings
from shared.settings import setting


@dataclass(frozen=True)
class ReadStoreSettings:
    store: Literal["sqlite", "postgres"] = setting(
        "TUTORPULSE_READ_STORE", "sqlite", "where read models are kept: `sqlite` or `postgres`"
    )
    sqlite_path: Path = setting(
        "TUTORPULSE_READ_SQLITE_PATH",
        Path("var/readmodels.sqlite"),
        "the read models' SQLite file (WAL mode; its folder is created)",
    )
    postgres_host: str = setting(
        "TUTORPULSE_READ_POSTGRES_HOST",
        "127.0.0.1",
        "the read models' PostgreSQL server",
        fallback="TUTORPULSE_POSTGRES_HOST",
    )
    postgres_port: int = setting(
        "TUTORPULSE_READ_POSTGRES_PORT",
        5432,
        "the read models' PostgreSQL port",
        minimum=1,
        maximum=65535,
        fallback="TUTORPULSE_POSTGRES_PORT",
    )
    postgres_dbname: str = setting(
        "TUTORPULSE_READ_POSTGRES_DBNAME",
        "tutorpulse",
        "the read models' PostgreSQL database",
        fallback="TUTORPULSE_POSTGRES_DBNAME",
    )
    postgres_user: str = setting(
        "TUTORPULSE_READ_POSTGRES_USER",
        "tutorpulse",
        "the read models' PostgreSQL user",
        fallback="TUTORPULSE_POSTGRES_USER",
    )
    postgres_password: str = setting(
        "TUTORPULSE_READ_POSTGRES_PASSWORD",
        "",
        "that user's password",
        secret=True,
        fallback="TUTORPULSE_POSTGRES_PASSWORD",
    )
    postgres_connect_timeout: float = setting(
        "TUTORPULSE_READ_POSTGRES_CONNECT_TIMEOUT",
        3.0,
        "seconds to wait for a pooled connection, and to connect (libpq `connect_timeout`: "
        "whole seconds, at least 2)",
        minimum=0,
        fallback="TUTORPULSE_POSTGRES_CONNECT_TIMEOUT",
    )
    postgres_statement_timeout: float = setting(
        "TUTORPULSE_READ_POSTGRES_STATEMENT_TIMEOUT",
        5.0,
        "seconds per statement (0 keeps the server's); a statement cut short (a lock wait, say) "
        "is retried like a deadlock, `TUTORPULSE_PROJECTION_CONFLICT_RETRIES` times",
        minimum=0,
        fallback="TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT",
    )
    postgres_pre_ping: bool = setting(
        "TUTORPULSE_READ_POSTGRES_PRE_PING",
        True,
        "check a pooled connection before use when it has been idle for a second or more (a read "
        "that found one dead is made once more on another)",
        fallback="TUTORPULSE_POSTGRES_PRE_PING",
    )
    postgres_conn_max_age: float = setting(
        "TUTORPULSE_READ_POSTGRES_CONN_MAX_AGE",
        1800.0,
        "seconds before a connection is replaced (0: the default)",
        minimum=0,
        fallback="TUTORPULSE_POSTGRES_CONN_MAX_AGE",
    )
    schema: SchemaSettings = field(default_factory=SchemaSettings)
    """Whether the meta table and the first generation are created at start."""
