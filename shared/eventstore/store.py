from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    InternalError,
    Mapper,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic

from shared import events
from shared.eventstore.cache import AggregateCache
from shared.eventstore.group_commit import GroupCommit
from shared.eventstore.postgres import (
    ANSWER_TIMEOUT,
    LIBPQ_CONNECT_TIMEOUT,
    STATEMENT_TIMEOUT,
    PostgresFactory,
    libpq_parameters,
)
from shared.eventstore.settings import EventStoreSettings
from shared.observability.context import current as current_trace
from shared.schema import MissingTables

STORE_NAME = "tutorpulse"
"""Names the tables (``tutorpulse_events``) and the relay's ``Nats-Msg-Id`` prefix."""


class EventMapper(Mapper[UUID]):
    """Stores each event as its contract JSON under its contract type name.

    The stored topic is the event type's name (not a Python import path), so modules can move
    without breaking stored history, and the relay can publish the stored bytes unchanged.

    An event stored while a trace is current (a request's command: see
    ``shared.observability.context``) carries it under ``metadata``
    (:class:`shared.events.Metadata`), written in place of the JSON's closing brace: the
    fragment is made once per request, so a traced event costs no second encoding.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = events.encode(domain_event)
        trace = current_trace()
        if trace is not None:
            state = state[:-1] + trace.stored
        return StoredEvent(
            originator_id=domain_event.aggregate_id,
            originator_version=domain_event.aggregate_version,
            topic=domain_event.type_name,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return events.decode(stored_event.state, stored_event.topic)


def store_env(settings: EventStoreSettings) -> dict[str, str]:
    """The eventsourcing library's variables for tutorpulse's event store settings."""
    env = {"MAPPER_TOPIC": get_topic(EventMapper)}
    if not settings.schema.create_tables:
        env["CREATE_TABLE"] = "no"
    if settings.store == "sqlite":
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": str(settings.sqlite_lock_timeout),
        }
    connect_timeout = str(settings.postgres_connect_timeout)
    return env | {
        "PERSISTENCE_MODULE": get_topic(PostgresFactory),
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_DBNAME": settings.postgres_dbname,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": settings.postgres_password,
        "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.postgres_max_overflow),
        "POSTGRES_LOCK_TIMEOUT": str(settings.postgres_lock_timeout),
        # The library's CONNECT_TIMEOUT is the wait for a pooled connection; the same
        # number bounds opening a connection (libpq), so a dead server fails a call fast.
        "POSTGRES_CONNECT_TIMEOUT": connect_timeout,
        LIBPQ_CONNECT_TIMEOUT: connect_timeout,
        STATEMENT_TIMEOUT: f"{settings.postgres_statement_timeout:g}",
        ANSWER_TIMEOUT: f"{settings.postgres_answer_timeout:g}",
        # One spelling for the library (which would read a blank value as "no").
        "POSTGRES_PRE_PING": "yes" if settings.postgres_pre_ping else "no",
        "POSTGRES_CONN_MAX_AGE": f"{settings.postgres_conn_max_age:g}",
        "POSTGRES_MAX_WAITING": str(settings.postgres_max_waiting),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(
            settings.postgres_idle_in_transaction_timeout
        ),
    }


T = TypeVar("T")
R = TypeVar("R", AggregateRecorder, TrackingRecorder)


def _retrying_concurrent_setup(create: Callable[[], T], attempts: int = 5) -> T:
    """Run table creation again if another replica was creating the same tables at the same
    moment (PostgreSQL then fails one of them with 'tuple concurrently updated', 'relation
    already exists' or a duplicate key in its catalogue); the second attempt finds the tables
    there."""
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
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"],
        password=env.get("POSTGRES_PASSWORD") or None,
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

    check_tables = True
    """Whether a store that may not create its tables checks at start that they exist."""

    def __init__(self, settings: EventStoreSettings) -> None:
        self._committed: list[Callable[[], None]] = []
        _retrying_concurrent_setup(
            lambda: super(EventStore, self).__init__(env=store_env(settings))
        )
        self._creates_tables = settings.schema.create_tables
        if self.check_tables:
            try:
                self._require(self.recorder)
            except BaseException:
                self.close()
                raise
        self.aggregates: AggregateCache | None = None
        """Kept aggregates for :mod:`services.command`'s loads (see :mod:`.cache`); none here."""
        self.group_commit: GroupCommit | None = (
            GroupCommit(self.recorder)
            if isinstance(self.recorder, PostgresApplicationRecorder)
            else None
        )

    def commit(self, *aggregates: Any, expected: Mapping[UUID, int] | None = None) -> int | None:
        """Store the pending events of ``aggregates`` in one atomic commit: all of them or,
        with the library's ``IntegrityError``, none (one of them was written meanwhile). On
        PostgreSQL the commit shares its transaction with concurrent ones
        (:mod:`shared.eventstore.group_commit`), and ``expected`` names aggregates whose
        latest stored version must still be the one given (``StaleRead`` otherwise); other
        stores take none. The notification id of the last event stored, ``None`` if there
        was none."""
        if self.group_commit is None:
            if expected:
                raise ValueError("only a PostgreSQL store checks expected versions")
            recordings = self.save(*aggregates)
            return recordings[-1].notification.id if recordings else None
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if not events:
            return None
        ids = self.group_commit.insert([self.mapper.to_stored_event(e) for e in events], expected)
        self._tell_committed()
        return ids[-1]

    def when_committed(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Have ``listener`` called, in the committing thread, after every commit of events
        this process makes through this store; the function returned stops it. A relay in the
        same process wakes up by it (SQLite tells no other process of a commit)."""
        self._committed.append(listener)
        return lambda: self._committed.remove(listener)

    def _notify(self, recordings: Any) -> None:
        super()._notify(recordings)
        if recordings:
            self._tell_committed()

    def _tell_committed(self) -> None:
        for listener in list(self._committed):
            listener()

    def snapshot_recorder(self) -> AggregateRecorder:
        """The store's snapshots table (created if missing), for :class:`.cache.Snapshots`."""
        return self._require(
            _retrying_concurrent_setup(lambda: self.factory.aggregate_recorder("snapshots"))
        )

    def tracking(self) -> TrackingRecorder:
        """The store's tracking table (created if missing), for processes that follow the log."""
        return self._require(_retrying_concurrent_setup(self.factory.tracking_recorder))

    def _require(self, recorder: R) -> R:
        """``recorder``, once its table is known to exist when this store may not create it
        (``TUTORPULSE_CREATE_TABLES`` off); :class:`MissingTables` if it does not."""
        if self._creates_tables:
            return recorder
        table = str(
            getattr(recorder, "events_table_name", None)
            or getattr(recorder, "tracking_table_name", None)
            or "tracking"  # the SQLite tracking recorder's fixed name
        )
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            if isinstance(self.recorder, PostgresApplicationRecorder):
                cursor.execute("SELECT to_regclass(%s) AS found", (f"{datastore.schema}.{table}",))
                row = cursor.fetchone()
                found = row is not None and row["found"] is not None
            else:
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
                )
                found = cursor.fetchone() is not None
        if not found:
            raise MissingTables("event store", [table])
        return recorder

    def construct_env(self, name: str, env: Any = None) -> Any:
        # Configuration comes from store_env() alone, so that a stray eventsourcing variable
        # in the process environment cannot silently switch the store.
        from eventsourcing.utils import Environment

        return Environment(name, dict(env or {}))

    @property
    def position(self) -> int:
        """The highest notification id recorded: a read-your-writes token."""
        return self.recorder.max_notification_id() or 0


class _Reader(EventStore):
    """The store, read-only and small: creates no table and keeps one connection. It checks
    none either: a missing table is what its reads then report (the query API's ``/ready``)."""

    check_tables = False

    def construct_env(self, name: str, env: Any = None) -> Any:
        return super().construct_env(
            name,
            {
                **dict(env or {}),
                "CREATE_TABLE": "no",
                "POSTGRES_POOL_SIZE": "1",
                "POSTGRES_MAX_OVERFLOW": "0",
            },
        )


class StoredLog:
    """The event store's head (the highest notification id committed) and notification log,
    read-only, for a service that only reads them (the query API: how far behind it is, and a
    person's export). Connects on first use, so the service starts whether or not the store is
    up; each call raises if the store cannot be read. Calling it reads the head."""

    def __init__(self, settings: EventStoreSettings) -> None:
        self._settings = settings
        self._reader: _Reader | None = None
        self._lock = threading.Lock()

    def _store(self) -> _Reader:
        with self._lock:
            if self._reader is None:
                self._reader = _Reader(self._settings)
            return self._reader

    def head(self) -> int:
        return self._store().recorder.max_notification_id() or 0

    __call__ = head

    def page(self, after: int, limit: int, stop: int) -> Sequence[Notification]:
        """Up to ``limit`` notifications after ``after``, none past ``stop``."""
        return self._store().recorder.select_notifications(
            after, limit, stop=stop, inclusive_of_start=False
        )

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
