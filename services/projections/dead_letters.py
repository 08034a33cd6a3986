"""``python -m services.projections.dead_letters``: look at, replay and discard dead letters.

An event the projection could not apply is dead-lettered: copied to the ``TP_DLQ`` stream
(``tp.dlq.<consumer>.<original subject>``) and counted as in for its aggregate's version, so
the projection moves on. After the cause is fixed (a new release of the projector, usually):

* ``list``                  one line per dead letter: its TP_DLQ sequence, the original
                            notification id, event type, deliveries, when, subject and reason;
* ``show SEQ``              its headers and the event as JSON;
* ``replay SEQ`` / ``--all`` apply it through the projector into the current generation; on
                            success it leaves TP_DLQ, on failure it stays and the reason is
                            printed. ``--all`` replays in the original order (notification id);
* ``discard SEQ --reason``  remove it for good (logged with the reason); the read models keep
                            going without it.

A replayed event is applied once, out of band: its aggregate's later events may have been
applied already. The read models then equal a rebuild when those later events do not
overwrite what the replayed event set (events that depend on it usually failed too, were
dead-lettered after it, and are replayed after it by ``--all``). When later events of the
same aggregate were applied, ``replay`` says so; ``python -m services.projections.rebuild``
makes the read models exact in any case (the event store holds every event).

Uses the same variables as the services: ``TUTORPULSE_NATS_URL`` (and the NATS credentials),
``TUTORPULSE_READ_STORE``…
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import anyio.to_thread
import nats.errors
import psycopg
import structlog
from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from services.projections.service import DLQ_PREFIX
from services.projections.settings import DeadLetterSettings
from shared import events
from shared.messaging import connect
from shared.messaging.auth import DLQ_STREAM, PROJECTIONS_CONSUMER
from shared.readmodels.projector import Batch, Change, OutOfOrder, apply
from shared.readmodels.store import ReadStore, SkipResult, Transaction, open_read_store

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    """Its sequence in TP_DLQ: what ``show``, ``replay`` and ``discard`` take."""
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def original_subject(self) -> str:
        return self.headers.get("Tp-Dlq-Subject") or self.subject.split(".", 3)[-1]

    @property
    def notification_id(self) -> int | None:
        value = self.headers.get("Tp-Notification-Id", "")
        return int(value) if value.isdigit() else None

    @property
    def event_type(self) -> str:
        return self.headers.get("Tp-Event-Type") or self.original_subject.rsplit(".", 1)[-1]

    @property
    def deliveries(self) -> int | None:
        value = self.headers.get("Tp-Dlq-Deliveries", "")
        return int(value) if value.isdigit() else None

    @property
    def reason(self) -> str:
        return self.headers.get("Tp-Dlq-Reason", "")

    @property
    def at(self) -> str:
        return self.headers.get("Tp-Dlq-At", "")

    def summary(self) -> dict[str, object]:
        return {
            "sequence": self.sequence,
            "notificationId": self.notification_id,
            "eventType": self.event_type,
            "deliveries": self.deliveries,
            "at": self.at,
            "subject": self.original_subject,
            "reason": self.reason,
        }


async def dead_letters(
    js: JetStreamContext, consumer: str = PROJECTIONS_CONSUMER
) -> list[DeadLetter]:
    """Every dead letter of ``consumer`` in TP_DLQ, by sequence."""
    found: list[DeadLetter] = []
    sequence = 1
    while True:
        try:
            raw = await js.get_msg(
                DLQ_STREAM, sequence, subject=f"{DLQ_PREFIX}.{consumer}.>", next=True
            )
        except NotFoundError:
            return found
        found.append(
            DeadLetter(
                int(raw.seq or 0), raw.subject or "", dict(raw.headers or {}), raw.data or b""
            )
        )
        sequence = int(raw.seq or 0) + 1


async def dead_letter(
    js: JetStreamContext, sequence: int, consumer: str = PROJECTIONS_CONSUMER
) -> DeadLetter:
    """One dead letter of ``consumer``; :class:`LookupError` if TP_DLQ has no such one."""
    try:
        raw = await js.get_msg(DLQ_STREAM, sequence)
    except NotFoundError:
        raise LookupError(f"TP_DLQ has no message {sequence}") from None
    if not (raw.subject or "").startswith(f"{DLQ_PREFIX}.{consumer}."):
        raise LookupError(f"TP_DLQ message {sequence} is not a dead letter of {consumer!r}")
    return DeadLetter(sequence, raw.subject or "", dict(raw.headers or {}), raw.data or b"")


# --- replaying --------------------------------------------------------------------------


class Replayed(Enum):
    APPLIED = "applied"
    """Applied in its place: nothing of its aggregate had been applied after it."""
    APPLIED_OUT_OF_ORDER = "applied out of order"
    """Applied after later events of its aggregate (see ``ReplayResult.later_applied``)."""
    ALREADY_IN = "already in the read models"
    """Nothing to do (a rebuild or another replay applied it)."""


@dataclass(frozen=True)
class ReplayResult:
    outcome: Replayed
    later_applied: int = 0
    """Events of the same aggregate applied before this one was (out of order)."""
    changes: list[Change] = field(default_factory=list)


class NotReplayable(Exception):
    """The dead letter cannot be applied now; the message says why."""


class _OutOfBand(Batch):
    """A batch that applies one event of an aggregate whose version has moved past it (it was
    counted as in when it was dead-lettered)."""

    def __init__(self, tx: Transaction, aggregate_id: str, version: int) -> None:
        super().__init__(tx)
        self._replayed = aggregate_id
        self._before = version - 1

    def aggregate_version(self, aggregate_id: str) -> int:
        if aggregate_id == self._replayed:
            return self._before
        return super().aggregate_version(aggregate_id)


def reapply(store: ReadStore, event: events.Event, notification_id: int) -> ReplayResult:
    """Apply a dead-lettered event through the projector in one transaction of the current
    generation. Raises :class:`NotReplayable` (changing nothing) if it still cannot be applied,
    or whatever the projector raises if it still fails."""
    aggregate_id, version = str(event.aggregate_id), event.aggregate_version
    with store.transaction() as tx:
        current = tx.aggregate_version(
            aggregate_id
        )  # locks the aggregate against the live projection
        skipped = tx.is_skipped(aggregate_id, version)
        if current >= version and not skipped:
            return ReplayResult(Replayed.ALREADY_IN)
        if current < version - 1:
            raise NotReplayable(
                f"{event.type_name} v{version} of {aggregate_id} needs v{current + 1} "
                "first (replay that one first, or use --all)"
            )
        try:
            if (
                current == version - 1
            ):  # its place is still free: apply it like the projection would
                batch = Batch(tx)
                apply(batch, event, notification_id)
                changes, later = batch.flush(), 0  # also passes later dead-lettered versions
            else:
                batch = _OutOfBand(tx, aggregate_id, version)
                apply(batch, event, notification_id)
                changes = batch.flush()
                tx.set_aggregate_versions([(aggregate_id, current)])  # the flush wrote ``version``
                tx.pass_skipped(aggregate_id, current)
                later = current - version - tx.skipped_between(aggregate_id, version, current)
        except OutOfOrder as waiting:
            raise NotReplayable(
                f"it needs an event that is not in the read models yet: {waiting}"
            ) from None
        if skipped:
            tx.forget_skip(aggregate_id, version)
    outcome = Replayed.APPLIED_OUT_OF_ORDER if later > 0 else Replayed.APPLIED
    return ReplayResult(outcome, later, changes)


def forget(store: ReadStore, event: events.Event, notification_id: int, reason: str) -> None:
    """A discarded dead letter is never applied: its aggregate's version counts it as in, and
    the skip record goes (unless an earlier event of the aggregate is missing too: then the
    record stays, and the version passes it when that earlier one is applied, dead-lettered
    or replayed: see ``Batch.flush`` and ``Transaction.skip``)."""
    aggregate_id, version = str(event.aggregate_id), event.aggregate_version
    with store.transaction() as tx:
        if (
            tx.skip(aggregate_id, version, notification_id, event.type_name, reason)
            is SkipResult.SKIPPED
        ):
            tx.forget_skip(aggregate_id, version)


def _decoded(letter: DeadLetter) -> tuple[events.Event, int]:
    try:
        event = events.decode(letter.data)
    except Exception as error:  # whatever the decoder says is the reason it cannot be replayed
        raise NotReplayable(
            f"the event cannot be decoded: {type(error).__name__}: {error}"
        ) from None
    if letter.notification_id is None:
        raise NotReplayable("it has no Tp-Notification-Id header")
    return event, letter.notification_id


async def replay(js: JetStreamContext, store: ReadStore, letter: DeadLetter) -> ReplayResult:
    """Replay one dead letter; on success remove it from TP_DLQ."""
    event, notification_id = _decoded(letter)
    result = await anyio.to_thread.run_sync(reapply, store, event, notification_id)
    await js.delete_msg(DLQ_STREAM, letter.sequence)
    log.info(
        "dead_letters.replayed",
        sequence=letter.sequence,
        subject=letter.original_subject,
        notification_id=notification_id,
        outcome=result.outcome.value,
        later_applied=result.later_applied,
    )
    return result


async def discard(js: JetStreamContext, store: ReadStore, letter: DeadLetter, reason: str) -> None:
    try:
        event, notification_id = _decoded(letter)
    except NotReplayable:  # nothing of it reached the read models
        pass
    else:
        await anyio.to_thread.run_sync(
            forget, store, event, notification_id, f"discarded: {reason}"
        )
    await js.delete_msg(DLQ_STREAM, letter.sequence)
    log.warning(
        "dead_letters.discarded",
        sequence=letter.sequence,
        subject=letter.original_subject,
        notification_id=letter.notification_id,
        event_type=letter.event_type,
        dead_letter_reason=letter.reason,
        reason=reason,
    )


# --- the command line ---------------------------------------------------------------------


def _print_list(letters: Sequence[DeadLetter], as_json: bool) -> None:
    if as_json:
        for letter in letters:
            print(json.dumps(letter.summary()))
        return
    if not letters:
        print("no dead letters")
        return
    print(
        f"{'SEQ':>6}  {'NOTIFICATION':>12}  {'EVENT TYPE':<28} {'DELIVERIES':>10}  {'WHEN':<24}  "
        "SUBJECT / REASON"
    )
    for letter in letters:
        print(
            f"{letter.sequence:>6}  {letter.notification_id or '-':>12}  {letter.event_type:<28} "
            f"{letter.deliveries or '-':>10}  {letter.at:<24}  {letter.original_subject}\n"
            f"{'':>6}  {letter.reason}"
        )


def _print_show(letter: DeadLetter) -> None:
    print(f"TP_DLQ message {letter.sequence} ({letter.subject})")
    for name in sorted(letter.headers):
        print(f"  {name}: {letter.headers[name]}")
    try:
        body = json.dumps(json.loads(letter.data), indent=2, sort_keys=True)
    except ValueError:
        body = repr(letter.data)
    print(body)


def _describe(letter: DeadLetter, result: ReplayResult) -> str:
    line = (
        f"#{letter.sequence} {letter.event_type} (notification {letter.notification_id}): "
        f"{result.outcome.value}"
    )
    if result.outcome is Replayed.APPLIED_OUT_OF_ORDER:
        line += (
            f"; {result.later_applied} later event(s) of its aggregate were applied before it, so "
            "the read models equal a rebuild only if those do not overwrite what it set; "
            "`python -m services.projections.rebuild` makes them exact"
        )
    return line


async def _run(args: argparse.Namespace, settings: DeadLetterSettings) -> int:
    try:  # ``connect`` keeps trying while NATS is away: a command line gives up instead
        nc: Client = await asyncio.wait_for(
            connect(settings.nats, name="tutorpulse-dead-letters", operator_fallback=True),
            CONNECT_TIMEOUT,
        )
    except TimeoutError:
        raise ConnectionError(f"no NATS server answered within {CONNECT_TIMEOUT:.0f} s") from None
    store: ReadStore | None = None
    try:
        js = nc.jetstream()
        if args.command == "list":
            _print_list(await dead_letters(js, args.consumer), args.json)
            return 0
        if args.command == "show":
            _print_show(await dead_letter(js, args.sequence, args.consumer))
            return 0
        store = await anyio.to_thread.run_sync(open_read_store, settings.read_store)
        if args.command == "discard":
            letter = await dead_letter(js, args.sequence, args.consumer)
            await discard(js, store, letter, args.reason)
            print(
                f"#{letter.sequence} {letter.event_type} (notification {letter.notification_id}): "
                f"discarded ({args.reason})"
            )
            return 0
        if args.all:
            letters = sorted(
                await dead_letters(js, args.consumer),
                key=lambda d: (d.notification_id is None, d.notification_id or 0, d.sequence),
            )
        else:
            letters = [await dead_letter(js, args.sequence, args.consumer)]
        kept = 0
        for letter in letters:
            try:
                result = await replay(js, store, letter)
            except Exception as error:  # the projector still fails on it: keep it, say why
                kept += 1
                why = (
                    str(error)
                    if isinstance(error, NotReplayable)
                    else f"{type(error).__name__}: {error}"
                )
                log.warning(
                    "dead_letters.replay_failed",
                    sequence=letter.sequence,
                    subject=letter.original_subject,
                    error=why,
                )
                print(
                    f"#{letter.sequence} {letter.event_type} "
                    f"(notification {letter.notification_id}): kept, {why}"
                )
                continue
            print(_describe(letter, result))
        if args.all:
            print(f"{len(letters) - kept} replayed, {kept} kept")
        return 1 if kept else 0
    except LookupError as missing:
        print(str(missing).strip("'\""), file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
        await nc.close()


def _sequence(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"a TP_DLQ sequence is a positive whole number, not {value!r}"
        )
    return int(value)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m services.projections.dead_letters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument(
        "--consumer", default=PROJECTIONS_CONSUMER, help="whose dead letters (default: %(default)s)"
    )
    commands = main.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per dead letter")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    commands.add_parser("show", help="headers and event of one dead letter").add_argument(
        "sequence", type=_sequence, help="its sequence in TP_DLQ (see list)"
    )
    replaying = commands.add_parser("replay", help="apply dead letters again, after a fix")
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument("sequence", type=_sequence, nargs="?", help="its sequence in TP_DLQ")
    which.add_argument(
        "--all", action="store_true", help="every dead letter, in the original order"
    )
    discarding = commands.add_parser("discard", help="remove one dead letter for good")
    discarding.add_argument("sequence", type=_sequence, help="its sequence in TP_DLQ")
    discarding.add_argument("--reason", required=True, help="why (logged)")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "discard" and not args.reason.strip():
        parser().error("discard needs a --reason that says why")
    from services.settings import start

    settings = start(DeadLetterSettings, "dead-letters")
    # Logs go to stderr, so that what the command prints (e.g. ``list --json``) stays clean.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    try:
        return asyncio.run(_run(args, settings))
    except (OSError, nats.errors.Error, psycopg.Error, sqlite3.Error) as error:
        print(
            f"cannot reach NATS or the read-model store: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
