"""Aggregates kept between commands, lent to one command at a time.

Loading an aggregate from its whole history reads every one of its events from the store each
time, so a command on a long-lived aggregate (a tutor's week, a busy session) costs more as the
history grows. :class:`AggregateCache` keeps, per aggregate, the live instance as the last
command that committed it left it, with its version. A load *borrows* it: the instance leaves
the cache (a concurrent command on the same aggregate finds none and reads it from the store or
its snapshot), is brought up to date by one query for the events stored after its version
(which usually returns none), and belongs to the command alone. Once that command's commit has
succeeded, every aggregate it borrowed, written or only read, is given back (:meth:`keep`) at
its new version. On any refusal, failure, conflict or stale read it is never given back: it may
hold decisions that were not stored. So no command ever sees another's uncommitted change, and
no copy is made on the way, except of kinds of aggregates that commands borrow at the same time
(a session, read by five help requests raised at once): those are pickled when given back, and
a load that finds one lent thaws a copy instead of reading it from the store.

The state is always as stored when the query ran, exactly as a full load would give it: other
processes' writes are read, never missed, and a decision taken on it is still refused on a
version conflict. Copies were measured before this: the eventsourcing library's cache hands
out a ``copy.deepcopy`` (0.75 ms for a tutor's week of 41 sessions), a pickle round trip cost
0.37 ms, a full reload 0.86 ms.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

Project = Callable[[Any, Iterable[Any]], Any]
log = structlog.get_logger(__name__)

SNAPSHOT_AFTER = 50
"""A cold load reads this many events at most before it looks for a snapshot; one that had to
read as many after the latest snapshot (or without one) writes a new snapshot."""


class Snapshots:
    """The latest state of long-lived aggregates, for loads that find nothing kept (a process
    that just started, another replica): pickled state under the ``fingerprint`` of the code
    that pickled it, in the store's snapshots table. A snapshot of other code is not used (the
    classes may have changed), and a lost snapshot only costs a longer read: snapshots are
    written after the events, outside any command's transaction, as the eventsourcing library
    writes its own."""

    def __init__(self, recorder: AggregateRecorder, fingerprint: str) -> None:
        self._recorder = recorder
        self._topic = f"pickle:{fingerprint}"
        self.written = 0

    def latest(self, aggregate_id: UUID) -> tuple[int, Any] | None:
        found = self._recorder.select_events(aggregate_id, desc=True, limit=1)
        if not found or found[0].topic != self._topic:
            return None
        thawed = _thaw(found[0].state)
        return None if thawed is None else (found[0].originator_version, thawed)

    def with_history(
        self, aggregate_id: UUID, events: AggregateRecorder
    ) -> tuple[tuple[int, Any] | None, list[StoredEvent]] | None:
        """On PostgreSQL, in one round trip: the latest snapshot of this code (or ``None``) and
        the stored events after it (all of them without one). ``None`` on another store."""
        if not isinstance(self._recorder, PostgresAggregateRecorder) or not isinstance(
            events, PostgresAggregateRecorder
        ):
            return None
        statement = SQL(
            "WITH s AS (SELECT originator_version, state FROM {schema}.{snapshots}"
            " WHERE originator_id = %(id)s AND topic = %(topic)s"
            " ORDER BY originator_version DESC LIMIT 1)"
            " SELECT 0 AS kind, originator_version, '' AS topic, state FROM s"
            " UNION ALL"
            " SELECT 1, originator_version, topic, state FROM {schema}.{events}"
            " WHERE originator_id = %(id)s"
            " AND originator_version > COALESCE((SELECT originator_version FROM s), 0)"
            " ORDER BY kind, originator_version"
        ).format(
            schema=Identifier(self._recorder.datastore.schema),
            snapshots=Identifier(self._recorder.events_table_name),
            events=Identifier(events.events_table_name),
        )
        with self._recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, {"id": aggregate_id, "topic": self._topic}, prepare=True)
            rows = curs.fetchall()
        snapshot: tuple[int, Any] | None = None
        stored: list[StoredEvent] = []
        for row in rows:
            if row["kind"] == 0:
                thawed = _thaw(bytes(row["state"]))
                if thawed is None:
                    return None  # the events before it were not read: read another way
                snapshot = row["originator_version"], thawed
            else:
                stored.append(
                    StoredEvent(
                        aggregate_id, row["originator_version"], row["topic"], bytes(row["state"])
                    )
                )
        return snapshot, stored

    def write(self, aggregate_id: UUID, version: int, frozen: bytes) -> None:
        """Store a snapshot of the aggregate at ``version``, and delete its older ones (of any
        code): loads read only the latest, and an aggregate with 10,000 events would otherwise
        keep 200 copies of its state."""
        try:
            self._recorder.insert_events([StoredEvent(aggregate_id, version, self._topic, frozen)])
        except IntegrityError:  # another process took the same one
            return
        self.written += 1
        self._delete_before(aggregate_id, version)

    def _delete_before(self, aggregate_id: UUID, version: int) -> None:
        recorder = self._recorder
        if isinstance(recorder, PostgresAggregateRecorder):
            statement: Any = SQL(
                "DELETE FROM {schema}.{snapshots}"
                " WHERE originator_id = %s AND originator_version < %s"
            ).format(
                schema=Identifier(recorder.datastore.schema),
                snapshots=Identifier(recorder.events_table_name),
            )
            key: object = aggregate_id
        elif isinstance(recorder, SQLiteAggregateRecorder):
            statement = (
                f"DELETE FROM {recorder.events_table_name}"
                " WHERE originator_id = ? AND originator_version < ?"
            )
            key = aggregate_id.hex  # as the library's SQLite recorder stores it
        else:
            return
        try:
            with recorder.datastore.transaction(commit=True) as cursor:
                cursor.execute(statement, (key, version))
        except (PersistenceError, psycopg.Error, sqlite3.Error) as error:
            # the snapshot is stored: an older one left behind costs space, not the command
            log.warning("snapshot.older_not_deleted", error=repr(error))


def _thaw(frozen: bytes) -> Any:
    """A snapshot's aggregate, or ``None`` (logged) if it cannot be unpickled any more."""
    try:
        return pickle.loads(frozen)  # our own bytes, never from outside
    except Exception as error:  # a class it names moved or changed outside the fingerprint
        log.warning("snapshot.unreadable", error=repr(error))
        return None


class StaleRate:
    """How often kept copies taken unasked turned out stale, over the last :attr:`WINDOW`
    commands that took them, and whether to take them so. Worth it while this process writes
    most of what it keeps (one command service process, the scheduler, the bench in-process):
    a round trip less per aggregate. Not while several processes write the same aggregates
    (uvicorn workers, replicas behind one balancer): then a third of the copies are stale and
    each costs a refused commit and a second decision. Above :attr:`MOST` stale, kept copies are
    brought up to date first, as before, and one command in :attr:`PROBE_EVERY` still takes
    them unasked, to notice when they stop being stale."""

    WINDOW = 200
    MOST = 0.1
    PROBE_EVERY = 50
    FIRST = 20
    """Outcomes needed before the rate is believed (before that, trusted)."""

    def __init__(self) -> None:
        self._outcomes: deque[bool] = deque(maxlen=self.WINDOW)
        self._stale = 0
        self._skipped = 0
        self._lock = threading.Lock()

    def trust(self) -> bool:
        with self._lock:
            if len(self._outcomes) < self.FIRST or self._stale <= self.MOST * len(self._outcomes):
                return True
            self._skipped += 1
            if self._skipped < self.PROBE_EVERY:
                return False
            self._skipped = 0
            return True

    def record(self, *, stale: bool) -> None:
        with self._lock:
            if len(self._outcomes) == self._outcomes.maxlen:
                self._stale -= self._outcomes[0]
            self._outcomes.append(stale)
            self._stale += stale

    @property
    def rate(self) -> float:
        with self._lock:
            return self._stale / len(self._outcomes) if self._outcomes else 0.0


class PresumedNew:
    """How often an aggregate this process knows nothing of turned out to exist, per kind of
    aggregate, and whether to presume the next one of that kind new without asking the store
    (:meth:`~services.command.unit_of_work.UnitOfWork.get_or_start`). Kinds differ: a process
    that just started knows none of the tutors' timetable weeks, which mostly exist, while a
    student's seat in a session is mostly new; one rate for both stopped presuming seats new
    (a store read per help request) for thousands of commands after a few weeks were guessed
    wrong. Each kind's rate is a :class:`StaleRate`; a load that did ask the store (the rate
    said not to presume) records what a guess would have met, so a kind's rate follows the
    store whether or not its aggregates are presumed new."""

    def __init__(self) -> None:
        self._kinds: dict[type, StaleRate] = {}
        self._lock = threading.Lock()

    def _of(self, kind: type) -> StaleRate:
        with self._lock:
            rate = self._kinds.get(kind)
            if rate is None:
                rate = self._kinds[kind] = StaleRate()
            return rate

    def trust(self, kind: type) -> bool:
        """Whether to presume an unknown aggregate of ``kind`` new."""
        return self._of(kind).trust()

    def record(self, kind: type, *, stale: bool) -> None:
        """An unknown aggregate of ``kind`` turned out to exist (``stale``) or not."""
        self._of(kind).record(stale=stale)

    def rate(self, kind: type) -> float:
        return self._of(kind).rate


class _Entry:
    """What is known of one kept aggregate."""

    __slots__ = ("aggregate", "frozen", "kind", "snapshotted", "version")

    def __init__(self, version: int, aggregate: Any, snapshotted: int) -> None:
        self.version = version
        self.aggregate = aggregate
        """The live instance, or ``None`` while a command has borrowed it (or after it was
        dropped: a failed command's instance is never given back)."""
        self.snapshotted = snapshotted
        """The version of the aggregate's latest snapshot this process knows of."""
        self.kind: type | None = None if aggregate is None else type(aggregate)
        self.frozen: bytes | None = None
        """The aggregate at :attr:`version`, pickled when it was given back, if it is of a
        kind that commands often borrow at the same time (see :attr:`AggregateCache.copied`)."""


class AggregateCache:
    """Aggregates as of their last commit, least recently used out, at most ``limit`` of them;
    each lent to one command at a time (see the module's description)."""

    def __init__(
        self,
        events: LibraryEventStore[UUID],
        limit: int = 20_000,
        snapshots: Snapshots | None = None,
    ) -> None:
        self._events = events
        self._snapshots = snapshots
        self._limit = limit
        self._entries: OrderedDict[UUID, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        """Loads that started from a kept instance."""
        self.trusted = 0
        """Kept instances lent without asking the store (see :meth:`kept`)."""
        self.copied = 0
        """Loads of an aggregate another command had borrowed, served from a pickled copy. A
        kind of aggregate that commands borrow at the same time (a session, read by its
        students' help requests raised at once) is pickled each time it is given back, once a
        load found one of that kind lent; a load that finds such an aggregate lent then thaws
        a copy rather than reading it from the store. Other kinds are never pickled."""
        self._contended: set[type] = set()
        self.stale = StaleRate()
        """How often those were stale."""
        self.presumed = PresumedNew()
        """How often an aggregate of each kind this process knows nothing of (see
        :meth:`known`) turned out to exist."""

    def get(self, aggregate_id: UUID, project: Project) -> Any:
        """The aggregate as stored now, the caller's own (the kept instance, if any, is lent:
        give it back with :meth:`keep` once it is committed, or never); raises
        ``AggregateNotFoundError`` if it has no events. ``project(aggregate_or_None, events)``
        applies events (a domain class's ``project``)."""
        aggregate, snapshotted = self._borrow(aggregate_id)
        if aggregate is None:
            return self._cold(aggregate_id, project)
        self.hits += 1
        later = list(self._events.get(aggregate_id, gt=aggregate.version))
        if not later:
            return aggregate
        aggregate = project(aggregate, later)
        self._snapshot_if_due(aggregate, snapshotted)
        return aggregate

    def kept(self, aggregate_id: UUID) -> Any:
        """The kept instance, lent as :meth:`get` lends it but without asking the store whether
        it has moved on since (``None`` if none is kept). Only for a caller whose commit checks
        that its version is still the latest (``GroupCommit``'s ``expected``)."""
        aggregate, _ = self._borrow(aggregate_id)
        if aggregate is not None:
            self.trusted += 1
        return aggregate

    def known(self, aggregate_id: UUID) -> bool:
        """Whether this process knows the aggregate exists (kept, lent, or read from a snapshot
        since it was last pushed out). One it does not know usually has no history yet, and
        only the store can say for sure."""
        with self._lock:
            return aggregate_id in self._entries

    def _borrow(self, aggregate_id: UUID) -> tuple[Any, int]:
        """The kept instance, taken out (``None`` if there is none), and the version of the
        latest snapshot known of."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is None:
                return None, 0
            self._entries.move_to_end(aggregate_id)
            if entry.aggregate is not None:
                aggregate, entry.aggregate = entry.aggregate, None
                return aggregate, entry.snapshotted
            frozen, snapshotted = entry.frozen, entry.snapshotted
            if frozen is None:  # lent: its kind is pickled from now on
                if entry.kind is not None:
                    self._contended.add(entry.kind)
                return None, 0
        self.copied += 1
        return pickle.loads(frozen), snapshotted  # our own bytes, never from outside

    def _cold(self, aggregate_id: UUID, project: Project) -> Any:
        """Nothing kept: the history, or when it is long, the latest snapshot and what
        followed it."""
        if self._snapshots is None:
            aggregate = project(None, self._events.get(aggregate_id))
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            return aggregate
        found = self._snapshots.with_history(aggregate_id, self._events.recorder)
        if found is not None:  # one round trip
            latest, stored = found
            aggregate, snapshotted = (None, 0) if latest is None else (latest[1], latest[0])
            aggregate = project(aggregate, map(self._events.mapper.to_domain_event, stored))
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            self._snapshot_if_due(aggregate, snapshotted)
            return aggregate
        first = list(self._events.get(aggregate_id, limit=SNAPSHOT_AFTER))
        if len(first) < SNAPSHOT_AFTER:
            aggregate = project(None, first)
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            return aggregate
        read = len(first)  # versions run from 1 without gaps: the last one read
        latest = self._snapshots.latest(aggregate_id)
        if latest is not None and latest[0] >= read:
            (since, aggregate), snapshotted = latest, latest[0]
        else:
            since, aggregate, snapshotted = read, project(None, first), 0
        aggregate = project(aggregate, self._events.get(aggregate_id, gt=since))
        self._snapshot_if_due(aggregate, snapshotted)
        return aggregate

    def keep(self, aggregate: Any) -> None:
        """Give back ``aggregate`` as a command just committed it (its events stored, none
        pending) or read it, unchanged: the next load of it starts from this instance, which
        nobody else may hold any more. Never an older state than the one kept or lent, nor
        one with no stored event (a load of it must still find nothing)."""
        version: int = aggregate.version
        if version < 1:
            return
        with self._lock:
            entry = self._entries.get(aggregate.id)
            if entry is not None and (
                entry.version > version
                or (entry.version == version and entry.aggregate is not None)
            ):
                return
            snapshotted = 0 if entry is None else entry.snapshotted
            # Given back at the version it was lent at (a command that only read it, as a help
            # request reads its session): the copy pickled at that version still holds.
            frozen = None if entry is None or entry.version != version else entry.frozen
        if frozen is None and type(aggregate) in self._contended:
            frozen = pickle.dumps(aggregate, -1)
        snapshotted = self._snapshot_if_due(aggregate, snapshotted, frozen)
        with self._lock:
            entry = self._entries.get(aggregate.id)
            if entry is None:
                entry = self._entries[aggregate.id] = _Entry(version, aggregate, snapshotted)
                entry.frozen = frozen
                while len(self._entries) > self._limit:
                    self._entries.popitem(last=False)
            elif entry.version < version or (entry.version == version and entry.aggregate is None):
                entry.version, entry.aggregate = version, aggregate
                entry.kind, entry.frozen = type(aggregate), frozen
                entry.snapshotted = max(entry.snapshotted, snapshotted)
                self._entries.move_to_end(aggregate.id)

    def _snapshot_if_due(
        self, aggregate: Any, snapshotted: int, frozen: bytes | None = None
    ) -> int:
        """Write a snapshot of ``aggregate`` when it has gone on for :data:`SNAPSHOT_AFTER`
        events since the one this process knows of (``snapshotted``); the version of the
        latest snapshot then, remembered for the aggregate."""
        version: int = aggregate.version
        if self._snapshots is not None and version - snapshotted >= SNAPSHOT_AFTER:
            if frozen is None:
                frozen = pickle.dumps(aggregate, -1)
            self._snapshots.write(aggregate.id, version, frozen)
            snapshotted = version
        if snapshotted:
            with self._lock:
                entry = self._entries.get(aggregate.id)
                if entry is None:
                    self._entries[aggregate.id] = _Entry(version, None, snapshotted)
                else:
                    entry.snapshotted = max(entry.snapshotted, snapshotted)
        return snapshotted

    def __len__(self) -> int:
        """Aggregates kept now (lent ones not counted)."""
        with self._lock:
            return sum(entry.aggregate is not None for entry in self._entries.values())

    def forget(self, aggregate_id: UUID) -> None:
        with self._lock:
            self._entries.pop(aggregate_id, None)
