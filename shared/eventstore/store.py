from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InternalError,
    Mapper,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.utils import get_topic

from shared import events
from shared.eventstore.postgres import (
    LIBPQ_CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    PostgresFactory,
    libpq_parameters,
)
from shared.settings import flag

STORE_NAME = "tutorpulse"
"""Names the tables (``tutorpulse_events``) and the relay's ``Nats-Msg-Id`` prefix."""


class EventMapper(Mapper[UUID]):
    """Stores each event as its contract JSON under its contract type name.

    The stored topic is the event type's name (not a Python import path), so modules can move
    without breaking stored history, and the relay can publish the stored bytes unchanged.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.aggregate_id,
            originator_version=domain_event.aggregate_version,
            topic=domain_event.type_name,
            state=events.encode(domain_event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return events.decode(stored_event.state, stored_event.topic)


def store_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Translate tutorpulse's documented variables into the eventsourcing library's."""
    source = {**os.environ, **(overrides or {})}
    kind = source.get("TUTORPULSE_STORE", "sqlite").lower()
    env = {"MAPPER_TOPIC": get_topic(EventMapper)}
    if kind == "sqlite":
        path = Path(source.get("TUTORPULSE_SQLITE_PATH", "var/tutorpulse.sqlite"))
        path.parent.mkdir(parents=True, exist_ok=True)
        env |= {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": source.get("TUTORPULSE_SQLITE_LOCK_TIMEOUT", "10"),
        }
    elif kind == "postgres":
        connect_timeout = source.get("TUTORPULSE_POSTGRES_CONNECT_TIMEOUT", "3")
        env |= {
            "PERSISTENCE_MODULE": get_topic(PostgresFactory),
            "POSTGRES_HOST": source.get("TUTORPULSE_POSTGRES_HOST", "127.0.0.1"),
            "POSTGRES_PORT": source.get("TUTORPULSE_POSTGRES_PORT", "5432"),
            "POSTGRES_DBNAME": source.get("TUTORPULSE_POSTGRES_DBNAME", "tutorpulse"),
            "POSTGRES_USER": source.get("TUTORPULSE_POSTGRES_USER", "tutorpulse"),
            "POSTGRES_PASSWORD": source.get("TUTORPULSE_POSTGRES_PASSWORD", ""),
            "POSTGRES_POOL_SIZE": source.get("TUTORPULSE_POSTGRES_POOL_SIZE", "5"),
            "POSTGRES_MAX_OVERFLOW": source.get("TUTORPULSE_POSTGRES_MAX_OVERFLOW", "10"),
            "POSTGRES_LOCK_TIMEOUT": source.get("TUTORPULSE_POSTGRES_LOCK_TIMEOUT", "5"),
            # The library's CONNECT_TIMEOUT is the wait for a pooled connection; the same
            # number bounds opening a connection (libpq), so a dead server fails a call fast.
            "POSTGRES_CONNECT_TIMEOUT": connect_timeout,
            LIBPQ_CONNECT_TIMEOUT: connect_timeout,
            STATEMENT_TIMEOUT: source.get("TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT", "5"),
            "POSTGRES_PRE_PING": source.get("TUTORPULSE_POSTGRES_PRE_PING", "yes"),
            "POSTGRES_CONN_MAX_AGE": source.get("TUTORPULSE_POSTGRES_CONN_MAX_AGE", "1800"),
            "POSTGRES_MAX_WAITING": source.get("TUTORPULSE_POSTGRES_MAX_WAITING", "0"),
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": source.get(
                "TUTORPULSE_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT", "5"),
        }
        _check_postgres_settings(env)
    else:
        raise ValueError(f"TUTORPULSE_STORE must be 'sqlite' or 'postgres', not {kind!r}")
    return env


_WHOLE, _ANY = (int, "a whole number"), (float, "a number")
_NUMBER_SETTINGS: dict[str, tuple[str, float, tuple[Callable[[str], float], str]]] = {
    "POSTGRES_POOL_SIZE": ("TUTORPULSE_POSTGRES_POOL_SIZE", 1, _WHOLE),
    "POSTGRES_MAX_OVERFLOW": ("TUTORPULSE_POSTGRES_MAX_OVERFLOW", 0, _WHOLE),
    "POSTGRES_LOCK_TIMEOUT": ("TUTORPULSE_POSTGRES_LOCK_TIMEOUT", 0, _WHOLE),
    "POSTGRES_CONNECT_TIMEOUT": ("TUTORPULSE_POSTGRES_CONNECT_TIMEOUT", 1, _WHOLE),
    "POSTGRES_MAX_WAITING": ("TUTORPULSE_POSTGRES_MAX_WAITING", 0, _WHOLE),
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": (
        "TUTORPULSE_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT", 0, _WHOLE),
    STATEMENT_TIMEOUT: ("TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT", 0.0, _ANY),
    "POSTGRES_CONN_MAX_AGE": ("TUTORPULSE_POSTGRES_CONN_MAX_AGE", 1.0, _ANY),
}


def _check_postgres_settings(env: dict[str, str]) -> None:
    """Refuse a mistyped setting at start, naming the tutorpulse variable (the library would
    name its own)."""
    for key, (variable, least, (parse, kind)) in _NUMBER_SETTINGS.items():
        try:
            valid = parse(env[key]) >= least
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"{variable} must be {kind} >= {least}, not {env[key]!r}")
    # One spelling for the library (which would read a blank value as "no").
    pre_ping = flag(env["POSTGRES_PRE_PING"], name="TUTORPULSE_POSTGRES_PRE_PING", default=True)
    env["POSTGRES_PRE_PING"] = "yes" if pre_ping else "no"


T = TypeVar("T")


def _retrying_concurrent_setup(create: Callable[[], T], attempts: int = 5) -> T:
    """Run table creation again if another replica was creating the same tables at the same
    moment (PostgreSQL then fails one of them with 'tuple concurrently updated', 'relation
    already exists' or a duplicate key in its catalogue); the second attempt finds the tables there."""
    for attempt in range(1, attempts + 1):
        try:
            return create()
        except (InternalError, IntegrityError, OperationalError, ProgrammingError):
            if attempt == attempts:
                raise
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def postgres_conninfo(env: Mapping[str, str]) -> str:
    """A libpq connection string for the store configured by :func:`store_env`, with the same
    connect timeout, statement timeout and keepalives as the store's own connections."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"], password=env.get("POSTGRES_PASSWORD") or None,
        **libpq_parameters(env),
    )


class EventStore(Application[UUID]):
    """The tutorpulse event store, for services that read or append events."""

    name = STORE_NAME

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every service reads and writes the same tables, whatever its subclass is called
        # (the library would otherwise name the tables after the subclass).
        super().__init_subclass__(**kwargs)
        cls.name = STORE_NAME

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        _retrying_concurrent_setup(lambda: super(EventStore, self).__init__(env=store_env(env)))

    def tracking(self) -> TrackingRecorder:
        """The store's tracking table (created if missing), for processes that follow the log."""
        return _retrying_concurrent_setup(self.factory.tracking_recorder)

    def construct_env(self, name: str, env: Any = None) -> Any:
        # Configuration comes from store_env() alone, so that a stray eventsourcing variable
        # in the process environment cannot silently switch the store.
        from eventsourcing.utils import Environment

        return Environment(name, dict(env or {}))

    @property
    def position(self) -> int:
        """The highest notification id recorded: a read-your-writes token."""
        return self.recorder.max_notification_id() or 0


class _HeadReader(EventStore):
    """The store, read-only and small: creates no table and keeps one connection."""

    def construct_env(self, name: str, env: Any = None) -> Any:
        return super().construct_env(name, {**dict(env or {}), "CREATE_TABLE": "no",
                                            "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"})


class StoreHead:
    """The event store's head (the highest notification id committed), for a service that
    only measures how far behind it is (the query API). Connects on first use, so the service
    starts whether or not the store is up; each call raises if the store cannot be read."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._reader: _HeadReader | None = None
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            if self._reader is None:
                self._reader = _HeadReader(self._env)
            reader = self._reader
        return reader.recorder.max_notification_id() or 0

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
