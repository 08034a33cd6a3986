"""``python -m shared.messaging.tail``: print events as they reach JetStream.

    python -m shared.messaging.tail                    # new events of every centre
    python -m shared.messaging.tail --centre main-campus --all

It connects where ``TUTORPULSE_NATS_URL`` says, else to the nats-server of ``make run`` on
``TUTORPULSE_NATS_PORT``. It logs in as an operator: ``TUTORPULSE_NATS_USER`` and
``TUTORPULSE_NATS_PASSWORD`` (the ``ops`` user of a deployment), or on a development machine
the ``ops`` credentials that ``make run`` wrote for its current run
(``var/nats/credentials/ops.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys

from nats.js.api import DeliverPolicy

from shared import events
from shared.events.subjects import STREAM_SUBJECTS, centre_filter
from shared.messaging.nats import connect
from shared.messaging.settings import NatsSettings, TailSettings
from shared.settings import SettingsError, load


async def tail(server: NatsSettings, subject: str, deliver: DeliverPolicy) -> None:
    nc = await connect(server, name="tutorpulse-tail", operator_fallback=True)
    js = nc.jetstream()
    subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=deliver)
    try:
        async for message in subscription.messages:
            event = events.decode(message.data)
            when = event.occurred_at.strftime("%H:%M:%S.%f")[:-3]
            number = message.headers.get("Tp-Notification-Id") if message.headers else "?"
            print(
                f"{when}  #{number:>6}  {event.type_name:<22} {event.actor_role:<17} "
                f"{message.subject}",
                flush=True,
            )
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--centre", help="only this centre's events")
    parser.add_argument("--all", action="store_true", help="replay the stream from the start")
    parser.add_argument(
        "--url", help="the NATS server (default: TUTORPULSE_NATS_URL, with TUTORPULSE_NATS_USER)"
    )
    args = parser.parse_args()
    try:
        found = load(TailSettings)
    except SettingsError as error:
        parser.error(str(error))
    subject = centre_filter(args.centre) if args.centre else STREAM_SUBJECTS
    deliver = DeliverPolicy.ALL if args.all else DeliverPolicy.NEW
    settings = dataclasses.replace(found.nats, url=args.url or found.url)
    print(f"following {subject} at {settings.url}", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(settings, subject, deliver))


if __name__ == "__main__":
    main()
