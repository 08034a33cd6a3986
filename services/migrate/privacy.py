"""``python -m services.migrate privacy``: the events written before personal data was sealed,
sealed once, in place (docs/privacy.md, "Events written before sealing").

Events stored before sealing existed hold names, e-mail addresses, notes and messages in plain
text, and a person's erasure could not reach them. This command reads the event store in
notification order, in batches, decodes each event, seals its personal fields with the key of
the person they are about (:func:`shared.privacy.fields.seal_event`, as the command service
does for every new event; a person's key is made on first use) and writes the sealed JSON back
into the same row: same aggregate, version and notification id, so the log's order and every
position are unchanged. It is the one place tutorpulse changes a stored event. A text sealed
already is left as it is, so running it again (or over events written sealed) changes nothing.
Paper annotations are sealed with the key of the student the upload was routed to (the latest
``PaperRouted`` before them), as the command service seals them. A text about a person erased
already (whose key is gone) cannot be sealed for them: it is replaced by ``"[erased]"``.

Then every snapshot is deleted (``tutorpulse_snapshots``: aggregate state with the plain
texts; aggregates are loaded from their events until new snapshots are taken). On SQLite the
rows are rewritten with ``secure_delete`` on and the WAL is checkpointed and truncated, so the
plain texts leave the file; on PostgreSQL the old row versions stay in the table's files until
``VACUUM`` reuses them (run ``VACUUM FULL tutorpulse_events, tutorpulse_snapshots`` in a quiet
moment to rewrite them now) and in WAL archives and backups for their retention.

What it does not change, and the operator does next (it prints this):

- JetStream ``TP_EVENTS`` holds its own copy of each event as published, in plain text. Purge
  it once the consumers have caught up, with the relay stopped (``nats stream purge
  TP_EVENTS``, as an account allowed to). Nothing is published again: the stream is a
  transport with a bounded age (``TUTORPULSE_NATS_EVENTS_MAX_AGE``), not the record, and
  republishing the old events would hand every past event again to the scheduler's and the
  notifier's consumers. The relay carries on from its recorded position.
- The read models were projected from the plain events: rebuild them
  (``python -m services.projections.rebuild``): the new generation holds the sealed texts,
  opened where answers leave tutorpulse, and is otherwise the same.
- The command services keep aggregates in memory: restart them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import msgspec
import structlog
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder

from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.privacy.cipher import FieldCipher
from shared.privacy.fields import Encrypts, seal_event
from shared.privacy.keys import PersonErased
from shared.privacy.reveal import ERASED

log = structlog.get_logger(__name__)

BATCH = 500
"""Events read, sealed and written back per transaction."""

NEXT_STEPS = """\
Next (see docs/privacy.md, "Events written before sealing"):
  1. JetStream TP_EVENTS still holds the plain copies it was sent: with the relay stopped and
     every consumer caught up, purge it (`nats stream purge TP_EVENTS`), then start the relay.
  2. Rebuild the read models: python -m services.projections.rebuild
  3. Restart the command services (they keep aggregates in memory)."""


@dataclass(frozen=True)
class Resealed:
    """What the command did."""

    events: int
    """Events read."""
    rewritten: int
    """Events whose stored JSON was rewritten (they held plain personal text)."""
    erased: int
    """Of those, events about an erased person whose texts became ``"[erased]"``."""
    snapshots: int
    """Snapshots deleted."""
    position: int
    """The notification id it read up to (events after it were written sealed)."""


class _Sealer:
    """Seals with the person's key; a person erased already gets ``"[erased]"``."""

    def __init__(self, cipher: Encrypts) -> None:
        self._cipher = cipher
        self.erased = False

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID) -> str:
        try:
            return self._cipher.encrypt(text, centre_id=centre_id, person_id=person_id)
        except PersonErased:
            self.erased = True
            return ERASED


def _restated(stored: bytes, sealed: events.Event) -> bytes:
    """The stored JSON of ``sealed``, keeping what the event store wrote beside the event's
    fields (its ``metadata``: the trace it was stored in)."""
    state = events.encode(sealed)
    original = msgspec.json.decode(stored)
    if isinstance(original, dict) and "metadata" in original:
        metadata = msgspec.json.encode(original["metadata"])
        state = state[:-1] + b',"metadata":' + metadata + b"}"
    return state


def _table_of(recorder: object) -> str:
    """The table a recorder of the library (SQLite or PostgreSQL) keeps its events in."""
    table: object = vars(recorder).get("events_table_name")
    if not isinstance(table, str):
        raise TypeError(f"{type(recorder).__name__} names no events table")
    return table


class _Rows:
    """The event store's tables, written in place (SQLite or PostgreSQL)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.postgres = isinstance(store.recorder, PostgresApplicationRecorder)
        self.events_table = _table_of(store.recorder)
        self.snapshots_table = _table_of(store.snapshot_recorder())
        self.mark = "%s" if self.postgres else "?"

    def rewrite(self, rows: list[tuple[Any, int, bytes]]) -> None:
        """Each ``(originator id, version, state)`` written into its row, in one transaction."""
        datastore = self.store.factory.datastore  # type: ignore[attr-defined]
        statement = (
            f"UPDATE {self.events_table} SET state = {self.mark} "
            f"WHERE originator_id = {self.mark} AND originator_version = {self.mark}"
        )
        with datastore.transaction(commit=True) as cursor:
            if not self.postgres:
                cursor.execute("PRAGMA secure_delete = ON")
            for originator_id, version, state in rows:
                key = originator_id if self.postgres else UUID(str(originator_id)).hex
                cursor.execute(statement, (state, key, version))
                if _rowcount(cursor) != 1:
                    raise RuntimeError(f"event {originator_id} v{version} is not stored")

    def delete_snapshots(self) -> int:
        datastore = self.store.factory.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as cursor:
            if not self.postgres:
                cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute(f"DELETE FROM {self.snapshots_table}")
            return _rowcount(cursor)


def _rowcount(cursor: Any) -> int:
    """Rows the last statement changed (the library's SQLite cursor wraps sqlite3's)."""
    inner = getattr(cursor, "sqlite_cursor", cursor)
    return int(inner.rowcount or 0)


def reseal(
    store: EventStore,
    cipher: Encrypts,
    *,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> Resealed:
    """Seal the personal texts of every stored event up to the store's head now, in place, and
    delete the snapshots (see the module). ``progress(position, head)`` after each batch."""
    rows = _Rows(store)
    head = store.position
    routed: dict[UUID, UUID] = {}
    """Each paper upload's student, by its latest ``PaperRouted`` so far."""
    position = count = rewritten = erased = 0
    while position < head:
        notifications: list[Notification] = list(
            store.recorder.select_notifications(
                position, batch, stop=head, inclusive_of_start=False
            )
        )
        if not notifications:
            break
        changed: list[tuple[Any, int, bytes]] = []
        for notification in notifications:
            event = events.decode(notification.state, notification.topic)
            if isinstance(event, events.PaperRouted):
                routed[event.aggregate_id] = event.student_id
            sealer = _Sealer(cipher)
            aggregate = SimpleNamespace(student_id=routed.get(event.aggregate_id))
            sealed = seal_event(event, sealer, aggregate)
            if sealed != event:
                changed.append(
                    (
                        notification.originator_id,
                        notification.originator_version,
                        _restated(notification.state, sealed),
                    )
                )
                erased += sealer.erased
        if changed:
            rows.rewrite(changed)
        rewritten += len(changed)
        count += len(notifications)
        position = notifications[-1].id
        if progress is not None:
            progress(position, head)
    snapshots = rows.delete_snapshots()
    result = Resealed(count, rewritten, erased, snapshots, position)
    log.info(
        "migrate.privacy.resealed",
        events=count,
        rewritten=rewritten,
        erased=erased,
        snapshots=snapshots,
        position=position,
    )
    return result


def checkpoint(settings: EventStoreSettings) -> None:
    """SQLite: copy the WAL into the file and truncate it, so the plain texts of the rows
    rewritten (zeroed in the file by ``secure_delete``) leave the WAL too. Nothing on
    PostgreSQL (see the module for ``VACUUM``)."""
    if settings.store != "sqlite":
        return
    connection = sqlite3.connect(settings.sqlite_path, timeout=settings.sqlite_lock_timeout)
    try:
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def run(store: EventStore, cipher: FieldCipher, settings: EventStoreSettings) -> Resealed:
    """The command's work: reseal, then checkpoint the SQLite file."""
    result = reseal(store, cipher)
    checkpoint(settings)
    return result
