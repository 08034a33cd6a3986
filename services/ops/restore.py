"""Backing up a SQLite event store while it is written, the step after any restore, and a
check of the stream against the store (``verify``, :mod:`services.ops.verify`).

``backup FILE`` copies the SQLite event store (``TUTORPULSE_SQLITE_PATH``) with SQLite's online
backup API: one consistent copy, taken while the services keep committing. (PostgreSQL: the
event tables with ``pg_dump``, or CloudNativePG's backups; docs/operations.md.)

``after-restore`` is run once an event store was restored to an earlier point, with the relay
and the command API stopped. The restored store lacks what was committed after its backup, but
``TP_EVENTS`` still holds those events (and the read models, the scheduler and the notifier
have seen them). Two things must hold before the relay and the writers start again:

1. **No new event takes a notification id the stream already holds.** The relay publishes each
   event with the message id ``tutorpulse:<notification id>``: inside the stream's duplicate
   window JetStream would drop a new event as a repeat of the lost one, and the relay's check of
   the stream's tail (how it skips what the stream already holds) could take the lost events for
   the new ones and skip these. On PostgreSQL the notification ids' sequence is moved past the
   stream's last notification id. SQLite numbers the next event one past the highest stored and
   cannot be moved: there ``after-restore`` refuses (status 2) and says to start the streams
   afresh.
2. **The relay publishes nothing again.** Its recorded position came back with the backup, as
   old as it; the stream holds everything up to its last event in order, so the position is moved
   to the restored store's head. Otherwise the events between would be published again, and
   those older than the duplicate window (2 minutes) stored twice.

When the stream ends before the restored head (it was lost, or lags), nothing is moved: the
relay publishes what the stream lacks past its recorded position, as after any restart.

It holds the relay's lease while it works, so it refuses to run while a relay leads.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog
from eventsourcing.persistence import Tracking
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg import sql

from services.ops.settings import OpsSettings
from services.ops.verify import DEFAULT_LAST, Streamed, Verified, compare, streamed_tail
from services.relay.__main__ import lease_for
from services.relay.relay import TRACKING_NAME
from services.settings import start
from shared.eventstore import EventStore
from shared.eventstore.store import postgres_conninfo
from shared.messaging import connect
from shared.messaging.auth import EVENTS_STREAM
from shared.messaging.stream_messages import notification_id_of

log = structlog.get_logger(__name__)
PROGRAM = "ops"
CONNECT_TIMEOUT = 10.0
REFUSED = 2
"""The exit status of an ``after-restore`` that changed nothing because it cannot be done."""


class RestoreRefused(Exception):
    """``after-restore`` cannot make the store safe to relay from; the message says what to do."""


@dataclass(frozen=True)
class AfterRestore:
    head: int
    """The restored store's highest notification id."""
    streamed: int
    """The notification id of ``TP_EVENTS``' last message (0: the stream is empty)."""
    next_id_after: int
    """New events are numbered above this."""
    relay_from: int
    """The relay's recorded position now: it publishes what comes after it."""
    relay_was: int

    def describe(self) -> str:
        lost = max(0, self.streamed - self.head)
        return (
            f"restored store ends at notification {self.head}; TP_EVENTS ends at "
            f"{self.streamed} ({lost} ids streamed past the restored head); new events are "
            f"numbered after {self.next_id_after}; the relay publishes after {self.relay_from} "
            f"(was {self.relay_was})"
        )


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the SQLite database ``source`` to ``target`` (which must not exist) with the online
    backup API; returns the pages copied. Writers may go on meanwhile: the copy is made in one
    step, as one read transaction sees the database (in WAL mode a reader blocks no writer), so
    it is never restarted by their commits."""
    if not source.is_file():
        raise FileNotFoundError(f"no SQLite event store at {source}")
    if target.exists():
        raise FileExistsError(f"{target} exists: back up to a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as origin:
        copy = sqlite3.connect(target)
        try:
            origin.backup(copy)
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
            if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise RuntimeError(f"the copy {target} fails SQLite's integrity check")
        finally:
            copy.close()
    return pages


async def streamed_up_to(js: JetStreamContext) -> int:
    """The notification id of ``TP_EVENTS``' last message; 0 if it is empty or missing."""
    try:
        state = (await js.stream_info(EVENTS_STREAM)).state
    except NotFoundError:
        return 0
    if not state.last_seq:
        return 0
    return notification_id_of(await js.get_msg(EVENTS_STREAM, state.last_seq))


def _move_sequence_past(store: EventStore, streamed: int) -> int:
    """Number new events above ``streamed`` and above every id the sequence gave; returns the
    id new events are numbered after."""
    recorder = store.recorder
    schema = recorder.datastore.schema  # type: ignore[attr-defined]
    table = f"{schema}.{recorder.events_table_name}"  # type: ignore[attr-defined]
    with psycopg.connect(postgres_conninfo(store.env), autocommit=True) as connection:
        row = connection.execute(
            "SELECT pg_get_serial_sequence(%s, 'notification_id')", (table,)
        ).fetchone()
        if row is None or row[0] is None:
            raise RestoreRefused(f"{table} has no notification id sequence")
        sequence = sql.SQL(str(row[0]))  # a regclass name PostgreSQL quoted itself
        last, called = connection.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(sequence)
        ).fetchone() or (0, False)
        given = int(last) if called else int(last) - 1
        if streamed <= given:
            return given
        connection.execute("SELECT setval(%s, %s, true)", (str(row[0]), streamed))
        return streamed


def after_restore(store: EventStore, streamed: int) -> AfterRestore:
    """Make ``store``, just restored, safe to relay from into a stream ending at ``streamed``
    (see the module). The relay must not run (the caller holds its lease)."""
    head = store.recorder.max_notification_id() or 0
    postgres = store.env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite"
    if postgres:
        next_id_after = _move_sequence_past(store, streamed)
    elif streamed > head:
        raise RestoreRefused(
            f"TP_EVENTS holds events up to notification {streamed}, past the restored SQLite "
            f"store's last ({head}), and SQLite would number new events from {head + 1}: "
            "delete the stream TP_EVENTS (and TP_DLQ) before the relay starts, so that it "
            "publishes afresh"
        )
    else:
        next_id_after = head
    tracking = store.tracking()
    was = tracking.max_tracking_id(TRACKING_NAME) or 0
    relay_from = was
    if streamed >= head > was:
        tracking.insert_tracking(Tracking(TRACKING_NAME, head))
        relay_from = head
    result = AfterRestore(head, streamed, next_id_after, relay_from, was)
    log.info(
        "ops.after_restore",
        head=head,
        streamed=streamed,
        next_id_after=next_id_after,
        relay_from=relay_from,
        relay_was=was,
    )
    if streamed < relay_from:
        log.warning(
            "ops.stream_behind",
            streamed=streamed,
            relay_from=relay_from,
            note="events up to the relay's position that the stream lacks are not published",
        )
    return result


async def _connect(settings: OpsSettings) -> Client:
    try:
        return await asyncio.wait_for(
            connect(settings.nats, name="tutorpulse-ops", operator_fallback=True),
            CONNECT_TIMEOUT,
        )
    except TimeoutError:
        raise ConnectionError(f"no NATS server answered within {CONNECT_TIMEOUT:.0f} s") from None


async def _streamed(settings: OpsSettings) -> int:
    client = await _connect(settings)
    try:
        return await streamed_up_to(client.jetstream())
    finally:
        await client.close()


async def _tail(settings: OpsSettings, last: int) -> list[Streamed]:
    client = await _connect(settings)
    try:
        return await streamed_tail(client.jetstream(), last)
    finally:
        await client.close()


def run_verify(settings: OpsSettings, last: int = DEFAULT_LAST) -> Verified:
    """``verify``: the stream's last ``last`` messages against the store."""
    streamed = asyncio.run(_tail(settings, last))
    store = EventStore(settings.event_store)
    try:
        return compare(store, streamed)
    finally:
        store.close()


def run_after_restore(settings: OpsSettings) -> AfterRestore:
    """``after-restore`` with ``settings``: the stream's tail, then the store under the relay's
    lease."""
    streamed = asyncio.run(_streamed(settings))
    store = EventStore(settings.event_store)
    try:
        lease = lease_for(store)
        if not lease.try_acquire():
            lease.release()
            raise RestoreRefused("a relay is running (it holds the lease): stop every relay first")
        try:
            return after_restore(store, streamed)
        finally:
            lease.release()
    finally:
        store.close()


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m services.ops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup", help="copy the SQLite event store while it runs")
    backup.add_argument("target", type=Path, help="the new file to write")
    commands.add_parser(
        "after-restore",
        help="after restoring the event store: number new events past the stream, move the "
        "relay's position to the restored head",
    )
    verifying = commands.add_parser(
        "verify",
        help="check that TP_EVENTS holds the store's events once each, in order (see "
        "services/ops/verify.py)",
    )
    verifying.add_argument(
        "--last",
        type=_positive,
        default=DEFAULT_LAST,
        help="how many of the stream's last messages to check (default: %(default)s)",
    )
    return main


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a whole number above 0, not {value!r}")
    return int(value)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    settings = start(OpsSettings, PROGRAM)
    if arguments.command == "backup":
        if settings.event_store.store != "sqlite":
            print(
                "backup copies a SQLite event store; on PostgreSQL use pg_dump "
                "(docs/operations.md, 'Backing up and restoring')",
                file=sys.stderr,
            )
            return REFUSED
        pages = backup_sqlite(settings.event_store.sqlite_path, arguments.target)
        print(f"backed up {settings.event_store.sqlite_path} to {arguments.target} ({pages} pages)")
        return 0
    if arguments.command == "verify":
        try:
            verified = run_verify(settings, arguments.last)
        except ConnectionError as away:
            print(f"verify: {away}", file=sys.stderr)
            return 1
        print(verified.describe())
        return 0 if verified.consistent else 1
    try:
        result = run_after_restore(settings)
    except RestoreRefused as refused:
        print(f"after-restore: {refused}", file=sys.stderr)
        return REFUSED
    except ConnectionError as away:  # NATS did not answer: nothing was changed
        print(f"after-restore: {away}; nothing changed", file=sys.stderr)
        return 1
    print(result.describe())
    return 0
