"""``python -m services.notifier.redeliver``: look at and send again dead-lettered deliveries.

A webhook call or e-mail that failed every try is dead-lettered to ``TP_DLQ`` on
``tp.dlq.notifier.<its TP_NOTIFY subject>``. Once the receiver is fixed:

* ``list``             one line per dead letter: its TP_DLQ sequence, channel, notification,
                       person, tries and the last error;
* ``SEQ …`` / ``--all`` send them again: each goes back to ``TP_NOTIFY`` for the notifier to
                       deliver (with as many tries again), and leaves ``TP_DLQ``.

It runs as the notifier's NATS user (``TUTORPULSE_NATS_USER=notifier`` and its password, or
a URL naming them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from services.notifier import planning
from services.notifier.planning import Delivery
from services.notifier.service import ATTEMPTS_HEADER, DLQ_PREFIX, ERROR_HEADER
from services.notifier.settings import RedeliverSettings
from shared.messaging import connect
from shared.messaging.auth import DLQ_STREAM, NOTIFY_STREAM


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    subject: str
    delivery: Delivery
    tries: str
    error: str


async def dead_letters(js: JetStreamContext) -> list[DeadLetter]:
    """Every dead-lettered delivery, oldest first."""
    found: list[DeadLetter] = []
    sequence = 1
    while True:
        try:
            message = await js.get_msg(
                DLQ_STREAM, seq=sequence, subject=f"{DLQ_PREFIX}.>", next=True
            )
        except NotFoundError:
            return found
        headers = message.headers or {}
        assert message.seq is not None and message.subject is not None and message.data
        found.append(
            DeadLetter(
                sequence=message.seq,
                subject=message.subject.removeprefix(f"{DLQ_PREFIX}."),
                delivery=planning.decode(message.data),
                tries=headers.get(ATTEMPTS_HEADER, "?"),
                error=headers.get(ERROR_HEADER, ""),
            )
        )
        sequence = message.seq + 1


async def redeliver(js: JetStreamContext, letter: DeadLetter) -> None:
    """Back to ``TP_NOTIFY`` (a new message, so not taken for a repeat of the first), then out
    of ``TP_DLQ``."""
    await js.publish(
        letter.subject,
        planning.encode(letter.delivery),
        stream=NOTIFY_STREAM,
        headers={"Nats-Msg-Id": f"{letter.delivery.message_id}:redelivered:{letter.sequence}"},
    )
    await js.delete_msg(DLQ_STREAM, letter.sequence)


def line(letter: DeadLetter) -> str:
    n = letter.delivery.notification
    return (
        f"{letter.sequence}\t{letter.delivery.channel}\t{n.notification_id}\t{n.person_id}\t"
        f"tries={letter.tries}\t{letter.error}"
    )


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(prog="python -m services.notifier.redeliver")
    found.add_argument("sequences", nargs="*", help="'list', or TP_DLQ sequences to send again")
    found.add_argument("--all", action="store_true", help="send every dead letter again")
    return found


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments, checked before the program reads its settings or connects anywhere."""
    command = parser()
    args = command.parse_args(argv)
    try:
        args.wanted = set() if args.sequences == ["list"] else {int(s) for s in args.sequences}
    except ValueError:
        command.error("a sequence is a number (see 'list')")
    if args.sequences != ["list"] and not args.wanted and not args.all:
        command.error("say 'list', some sequences, or --all")
    return args


async def run(argv: Sequence[str], settings: RedeliverSettings, nc: Client | None = None) -> int:
    args = parse(argv)
    listing, wanted = args.sequences == ["list"], args.wanted
    own = nc is None
    client = nc or await connect(settings.nats, name="tutorpulse-notifier-redeliver")
    try:
        js = client.jetstream()
        letters = await dead_letters(js)
        if listing:
            for letter in letters:
                print(line(letter))
            return 0
        chosen = [x for x in letters if args.all or x.sequence in wanted]
        for letter in chosen:
            await redeliver(js, letter)
            print(f"sent again: {line(letter)}")
        missing = wanted - {x.sequence for x in letters}
        for sequence in sorted(missing):
            print(f"no dead letter {sequence}", file=sys.stderr)
        return 1 if missing else 0
    finally:
        if own:
            await client.close()


def main() -> None:
    from services.settings import start

    parse(sys.argv[1:])  # --help and mistakes answered before logging is set up
    settings = start(RedeliverSettings, "redeliver")
    sys.exit(asyncio.run(run(sys.argv[1:], settings)))


if __name__ == "__main__":
    main()
