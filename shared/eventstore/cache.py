"""Aggregates kept between commands, brought up to date by one query for what came after.

Loading an aggregate from its whole history reads every one of its events from the store each
time, so a command on a long-lived aggregate (a tutor's week, a busy session) costs more as the
history grows. :class:`AggregateCache` keeps, per aggregate, the version it last saw and the
aggregate's state frozen with :mod:`pickle`; a load thaws a private copy and applies only the
events stored after that version (one query, which usually returns none). The state is always
as stored when the query ran, exactly as a full load would give it: other processes' writes are
read, never missed, and a decision taken on it is still refused on a version conflict.

Each load gets its own copy (commands change the aggregates they load). The eventsourcing
library's own cache does the same with ``copy.deepcopy``, which measured 0.75 ms for a tutor's
week of 41 sessions, against 0.37 ms for a pickle round trip and 0.86 ms for a full reload.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import AggregateRecorder, IntegrityError, StoredEvent
from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.postgres import PostgresAggregateRecorder
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
        try:
            self._recorder.insert_events([StoredEvent(aggregate_id, version, self._topic, frozen)])
        except IntegrityError:  # another process took the same one
            return
        self.written += 1


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


class AggregateCache:
    """Aggregates as of their last load, least recently used out, in at most ``limit_bytes``
    of pickled state."""

    def __init__(
        self,
        events: LibraryEventStore[UUID],
        limit_bytes: int = 64 << 20,
        snapshots: Snapshots | None = None,
    ) -> None:
        self._events = events
        self._snapshots = snapshots
        self._limit = limit_bytes
        self._bytes = 0
        self._entries: OrderedDict[UUID, tuple[int, bytes, int]] = OrderedDict()
        """Per aggregate: its version, its pickled state, the version of its latest snapshot."""
        self._lock = threading.Lock()
        self.hits = 0
        """Loads that started from a kept state."""
        self.trusted = 0
        """Kept states handed out without asking the store (see :meth:`kept`)."""
        self.stale = StaleRate()
        """How often those were stale."""

    def get(self, aggregate_id: UUID, project: Project) -> Any:
        """The aggregate as stored now, a copy of its own; ``AggregateNotFoundError`` if it has
        no events. ``project(aggregate_or_None, events)`` applies events (a domain class's
        ``project``)."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None:
                self._entries.move_to_end(aggregate_id)
        if entry is None:
            return self._cold(aggregate_id, project)
        self.hits += 1
        version, frozen, snapshotted = entry
        aggregate = pickle.loads(frozen)  # our own bytes, never from outside
        later = list(self._events.get(aggregate_id, gt=version))
        if not later:
            return aggregate
        aggregate = project(aggregate, later)
        self._keep(aggregate_id, aggregate, snapshotted)
        return aggregate

    def _cold(self, aggregate_id: UUID, project: Project) -> Any:
        """Nothing kept: the history, or when it is long, the latest snapshot and what
        followed it."""
        if self._snapshots is None:
            aggregate = project(None, self._events.get(aggregate_id))
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            self._keep(aggregate_id, aggregate, 0)
            return aggregate
        found = self._snapshots.with_history(aggregate_id, self._events.recorder)
        if found is not None:  # one round trip
            latest, stored = found
            aggregate, snapshotted = (None, 0) if latest is None else (latest[1], latest[0])
            aggregate = project(aggregate, map(self._events.mapper.to_domain_event, stored))
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            self._keep(aggregate_id, aggregate, snapshotted)
            return aggregate
        first = list(self._events.get(aggregate_id, limit=SNAPSHOT_AFTER))
        if len(first) < SNAPSHOT_AFTER:
            aggregate = project(None, first)
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            self._keep(aggregate_id, aggregate, 0)
            return aggregate
        read = len(first)  # versions run from 1 without gaps: the last one read
        latest = self._snapshots.latest(aggregate_id)
        if latest is not None and latest[0] >= read:
            (since, aggregate), snapshotted = latest, latest[0]
        else:
            since, aggregate, snapshotted = read, project(None, first), 0
        aggregate = project(aggregate, self._events.get(aggregate_id, gt=since))
        self._keep(aggregate_id, aggregate, snapshotted)
        return aggregate

    def kept(self, aggregate_id: UUID) -> Any:
        """A copy of its own of the aggregate as last kept, without asking the store whether
        it has moved on since (``None`` if none is kept). Only for a caller whose commit checks
        that its version is still the latest (``GroupCommit``'s ``expected``)."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is None:
                return None
            self._entries.move_to_end(aggregate_id)
        self.trusted += 1
        return pickle.loads(entry[1])  # our own bytes, never from outside

    def keep(self, aggregate: Any) -> None:
        """``aggregate`` as a command just committed it (its events stored, none pending): the
        next load of it starts from here and finds nothing after it, rather than reading and
        applying the command's own events again. Never an older state than the one kept."""
        with self._lock:
            kept = self._entries.get(aggregate.id)
        self._keep(aggregate.id, aggregate, 0 if kept is None else kept[2])

    def _keep(self, aggregate_id: UUID, aggregate: Any, snapshotted: int) -> None:
        """Keep ``aggregate`` (and write a snapshot of it when it has gone on for
        :data:`SNAPSHOT_AFTER` events since the one it knows of)."""
        frozen = pickle.dumps(aggregate, -1)
        version: int = aggregate.version
        if self._snapshots is not None and version - snapshotted >= SNAPSHOT_AFTER:
            self._snapshots.write(aggregate_id, version, frozen)
            snapshotted = version
        if len(frozen) > self._limit:
            return
        with self._lock:
            kept = self._entries.get(aggregate_id)
            if kept is not None:
                if kept[0] >= version:
                    return
                self._bytes -= len(kept[1])
            self._entries[aggregate_id] = (version, frozen, snapshotted)
            self._bytes += len(frozen)
            self._entries.move_to_end(aggregate_id)
            while self._bytes > self._limit:
                _, (_, evicted, _) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    @property
    def size(self) -> int:
        """Bytes of pickled state kept."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, aggregate_id: UUID) -> None:
        with self._lock:
            kept = self._entries.pop(aggregate_id, None)
            if kept is not None:
                self._bytes -= len(kept[1])
