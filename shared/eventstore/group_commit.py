"""Group commit: the events of concurrent commands inserted in one PostgreSQL transaction.

Every insert into the events table takes the table's EXCLUSIVE lock until it commits (the
eventsourcing library's way of keeping notification ids in commit order, which the relay relies
on), so concurrent commands queue for it one transaction at a time, each with its own round
trips. Here a command's thread hands its events to :meth:`GroupCommit.insert` and waits; the
first waiting thread becomes the group's writer and stores every command queued meanwhile in
one transaction under one lock:

- fast path: one ``INSERT`` of every command's events, in the order the commands arrived, sent
  with the lock, the notification and the ``COMMIT`` in one round trip (a group of one costs
  what the library's own append costs, which takes two);
- when that insert conflicts (some command's aggregate was written meanwhile, or two commands
  of the group wrote the same aggregate), the transaction is rolled back and the group is
  inserted again command by command, each under its own savepoint, in the same order: a command
  that conflicts is refused with the library's ``IntegrityError`` (its caller decides again on
  fresh state) and the others are committed.

A command may also name versions it decided on (``expected``: aggregates it took from the
command service's kept copies without asking the store, see :mod:`.cache`): under the lock, in
the same statement as the insert, their latest stored versions are read, and if one moved on
nothing is inserted (the transaction commits empty) and the command is refused with
:class:`StaleRead` (an ``IntegrityError``) like any conflict, so it is decided again on fresh
state, never stored over what it did not see.

Each command stays all or nothing (its events are in one statement, under one savepoint), its
events get consecutive notification ids, the ids of the group follow the order of its commands
and commit with them at once, so a reader of the log never passes over an id committed later.
Any other failure (the lock not granted in time, the connection lost) fails every command of
the group with that error, and nothing of the group is stored. PostgreSQL not answering in time
(:class:`~shared.eventstore.postgres.Unanswered`, a frozen server) fails the commands queued
meanwhile too, so none waits for the limit twice; that group itself may still be committed
when the server runs again, as it had received the whole transaction: its commands were
answered 503, and one retried with the same Idempotency-Key is applied once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
import psycopg.errors
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.abc import Query
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from shared.eventstore.postgres import Unanswered

MAX_GROUP = 256
"""The most commands one transaction stores; later ones wait for the next group."""


class StaleRead(IntegrityError):
    """An aggregate the command decided on was written by someone else since it was kept."""

    def __init__(self, message: str, moved: Iterable[UUID | str] = ()) -> None:
        super().__init__(message)
        self.moved = frozenset(moved)
        """The aggregates that moved on (none named: the refusal did not come from a check)."""


@dataclass
class _Pending:
    events: Sequence[StoredEvent]
    expected: Mapping[UUID, int] = field(default_factory=dict)
    """Aggregates whose latest stored version must still be this one."""
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommit:
    """Stores the events of concurrent commands, a group per transaction (see the module)."""

    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self._recorder = recorder
        schema = Identifier(recorder.datastore.schema)
        events_table = Identifier(recorder.events_table_name)
        id_type = Identifier(recorder.datastore.originator_id_type)
        columns = SQL(
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %s::bigint[], %b::text[], %b::bytea[])"
        ).format(schema=schema, events=events_table, id_type=id_type)
        self._insert = (columns + SQL(" RETURNING notification_id")).as_bytes()
        """The events given as four arrays (binary but for the versions): psycopg dumps
        them faster than an array of the library's composite type (hex and escapes)."""
        self._checked_insert = (
            SQL(
                "WITH moved AS ("
                " SELECT x.originator_id"
                " FROM unnest(%b::{id_type}[], %s::bigint[]) AS x(originator_id, version)"
                " WHERE COALESCE(("
                "  SELECT e.originator_version FROM {schema}.{events} AS e"
                "  WHERE e.originator_id = x.originator_id"
                "  ORDER BY e.originator_version DESC LIMIT 1"
                " ), 0) <> x.version"
                "), inserted AS ("
                " {columns} WHERE NOT EXISTS (SELECT FROM moved)"
                " RETURNING notification_id"
                ")"
                " SELECT notification_id, NULL::{id_type} AS moved FROM inserted"
                " UNION ALL SELECT NULL, originator_id FROM moved"
            )
            .format(schema=schema, events=events_table, id_type=id_type, columns=columns)
            .as_bytes()
        )
        """One statement: the expected versions checked and, if none moved on, the events
        inserted; the notification ids inserted and the aggregates that moved on."""
        self._lock_statements: list[Query] = [
            SQL(
                "SELECT set_config('lock_timeout', {timeout}, true),"
                " set_config('plan_cache_mode', 'force_generic_plan', true),"
                " pg_notify({channel}, '')"
            )
            .format(
                timeout=Literal(f"{recorder.datastore.lock_timeout}s"),
                channel=Literal(recorder.channel_name),
            )
            .as_bytes(),
            SQL("LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE")
            .format(schema=schema, events=events_table)
            .as_bytes(),
        ]
        """What the library's own inserts take (``SET LOCAL lock_timeout``, the table's
        EXCLUSIVE lock, ``NOTIFY``) in two statements instead of three, composed once: in a
        pipeline, psycopg writes each statement to the socket as it is executed, and those
        writes were most of a group's CPU in the process. The first statement also has the
        checked insert planned once (``plan_cache_mode``, for this transaction only):
        PostgreSQL would otherwise plan it again at every execution (a custom plan, as it
        judges the generic one dearer), which doubled its CPU per group of one."""
        self._latest_versions = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{events}"
            " WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            events=Identifier(recorder.events_table_name),
        )
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self.writing = threading.Lock()
        """Held by the thread writing a group. (Tests hold it to gather a group.)"""
        self.groups = 0
        """Transactions committed or tried so far."""
        self.fallbacks = 0
        """Groups that were stored command by command after a conflict."""
        self.stale = 0
        """Commands refused because an aggregate they decided on had moved on."""

    def queued(self) -> int:
        """Commands waiting for the next group."""
        with self._queue_lock:
            return len(self._queue)

    def insert(
        self, events: Sequence[StoredEvent], expected: Mapping[UUID, int] | None = None
    ) -> list[int]:
        """Store one command's events, all or none; their notification ids. Raises the
        library's ``IntegrityError`` if one of its aggregates was written meanwhile, and
        :class:`StaleRead` if an aggregate of ``expected`` is no longer at that version."""
        pending = _Pending(events, dict(expected or {}))
        with self._queue_lock:
            self._queue.append(pending)
        while not pending.done.is_set():
            with self.writing:
                if pending.done.is_set():
                    break
                with self._queue_lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._write(group)
        if pending.error is not None:
            raise pending.error
        return pending.ids

    def _write(self, group: list[_Pending]) -> None:
        self.groups += 1
        try:
            try:
                self._write_at_once(group)
            except IntegrityError:  # the library's, for psycopg's UniqueViolation
                if len(group) == 1:
                    raise
                self.fallbacks += 1
                self._write_one_by_one(group)
        except BaseException as error:
            if isinstance(error, Unanswered):
                # The commands that queued while PostgreSQL did not answer have waited the
                # answer limit already: they fail with the group rather than wait it again.
                with self._queue_lock:
                    group, self._queue = group + self._queue, []
            for pending in group:
                if not pending.done.is_set():
                    pending.ids = []
                    pending.error = error
        finally:
            for pending in group:
                pending.done.set()

    def _write_at_once(self, group: list[_Pending]) -> None:
        """The whole group in one round trip: the lock, the notification, one statement that
        checks every expected version and inserts every event unless one moved on, and the
        commit, all sent before any answer is read. A stale group commits nothing (an empty
        transaction) and is refused; a conflict rolls the transaction back and is raised."""
        if len(group) > 1 and _reads_own_group(group):
            raise IntegrityError("a command decided on what an earlier one of its group wrote")
        recorder = self._recorder
        events = [event for pending in group for event in pending.events]
        expected_ids: list[UUID] = []
        expected_versions: list[int] = []
        for pending in group:
            expected_ids.extend(pending.expected)
            expected_versions.extend(pending.expected.values())
        ids: list[int] = []
        moved: set[UUID | str] = set()
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                # BEGIN and COMMIT are statements of the pipeline (the library's connections
                # are in autocommit): psycopg's transaction() inside a pipeline nests two more
                # pipelines, each synced on its way in or out, so a group took four round
                # trips, two of them under the table lock, where it now takes one.
                with conn.pipeline(), conn.cursor() as tx:
                    tx.execute(b"BEGIN")
                    self._lock(tx)
                    if expected_ids:
                        curs.execute(
                            self._checked_insert,
                            (expected_ids, expected_versions, *_columns(events)),
                            prepare=True,
                        )
                    else:  # nothing to check: the plain insert
                        curs.execute(self._insert, _columns(events), prepare=True)
                    tx.execute(b"COMMIT")
            except BaseException:  # the transaction failed (or was never committed): undone
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()
                raise
            for row in curs.fetchall():
                if row["notification_id"] is None:  # only the checked insert answers these
                    moved.add(row["moved"])
                else:
                    ids.append(row["notification_id"])
        if moved:
            for pending in group:
                _refuse_if_moved_on(pending.expected, {}, moved)
        if len(ids) != len(events):
            raise RuntimeError(f"{len(ids)} notification ids for {len(events)} events")
        ids.sort()  # one statement's ids follow its rows; RETURNING promises no order
        start = 0
        for pending in group:
            pending.ids = ids[start : start + len(pending.events)]
            start += len(pending.events)

    def _write_one_by_one(self, group: list[_Pending]) -> None:
        """The group again, each command under its own savepoint: a conflicting command is
        refused, the others are stored (still in one transaction, under one lock)."""
        refused: dict[int, IntegrityError] = {}
        stored: dict[int, list[int]] = {}
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock(curs)
            expected = {key for pending in group for key in pending.expected}
            latest: dict[UUID | str, int] = {}  # under the lock: nobody else writes meanwhile
            if expected:
                curs.execute(self._latest_versions, (list(expected),), prepare=True)
                latest = {row["originator_id"]: row["version"] for row in curs.fetchall()}
            for index, pending in enumerate(group):
                try:
                    _refuse_if_moved_on(pending.expected, latest)
                except StaleRead as error:
                    refused[index] = error
                    continue
                try:
                    with conn.transaction():
                        self._execute_insert(curs, pending.events)
                        stored[index] = [row["notification_id"] for row in curs.fetchall()]
                except psycopg.errors.UniqueViolation as error:
                    refused[index] = IntegrityError(str(error))
                    continue
                _written(pending, latest)
        for index, pending in enumerate(group):
            if index in refused:
                pending.error = refused[index]
            else:
                pending.ids = stored[index]
            pending.done.set()

    def _lock(self, curs: Cursor[DictRow]) -> None:
        """The library's table lock (with its lock timeout) and notification, as its own
        inserts take them (see ``_lock_statements``)."""
        for statement in self._lock_statements:
            curs.execute(statement, prepare=True)

    def _execute_insert(self, curs: Cursor[DictRow], events: Sequence[StoredEvent]) -> None:
        curs.execute(self._insert, _columns(events), prepare=True)


def _columns(
    events: Sequence[StoredEvent],
) -> tuple[list[UUID | str], list[int], list[str], list[bytes]]:
    """The events as the insert's four arrays."""
    return (
        [e.originator_id for e in events],
        [e.originator_version for e in events],
        [e.topic for e in events],
        [e.state for e in events],
    )


def _written(pending: _Pending, latest: dict[UUID | str, int]) -> None:
    """What the commands after ``pending`` in its group must see of its aggregates."""
    for event in pending.events:
        latest[event.originator_id] = event.originator_version


def _reads_own_group(group: list[_Pending]) -> bool:
    """Whether a command expects a version of an aggregate an earlier command of the group
    writes (it decided without seeing that write, so it is refused: see the fallback)."""
    written: set[UUID | str] = set()
    for pending in group:
        if not written.isdisjoint(pending.expected):
            return True
        written.update(event.originator_id for event in pending.events)
    return False


def _refuse_if_moved_on(
    expected: Mapping[UUID, int],
    latest: dict[UUID | str, int],
    moved_on: set[UUID | str] | None = None,
) -> None:
    """Refuse a command whose expected versions are not the latest ones (``latest``), or that
    expects a version of an aggregate named in ``moved_on``."""
    if moved_on is None:
        moved = [key for key, version in expected.items() if latest.get(key, 0) != version]
    else:
        moved = [key for key in expected if key in moved_on]
    if moved:
        raise StaleRead(f"{len(moved)} aggregate(s) changed since the command read them", moved)
