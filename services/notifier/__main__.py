"""``python -m services.notifier``: the notifier with /health, /ready, /metrics (port 8016).

``/ready`` is 200 while NATS answers a ping and the read store and the key store answer;
while NATS, the read store or the key store (in the event store's database) cannot be reached
at start, or the streams do not exist yet (the relay creates them), it is 503 and says what it
waits for (``services.read_side_process``). Without a master key outside development mode it
does not start (``privacy.misconfigured``). SIGTERM stops it (messages it has not acknowledged
go to another replica after their ack wait).
"""

from __future__ import annotations

import asyncio

from services.notifier.service import NotifierService
from services.notifier.settings import NotifierServiceSettings
from services.read_side_process import run_read_side_process
from services.settings import start
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFY_STREAM
from shared.privacy import key_store_opener

SERVICE = "notifier"


async def main(settings: NotifierServiceSettings) -> None:
    open_keys = key_store_opener(
        SERVICE, settings.event_store, settings.privacy, dev_mode=settings.dev_mode
    )
    await run_read_side_process(
        SERVICE,
        settings,
        lambda store, nc: NotifierService(
            store, nc, settings.delivery, open_keys, settings.privacy
        ),
        streams=(EVENTS_STREAM, DLQ_STREAM, NOTIFY_STREAM),
    )


if __name__ == "__main__":
    asyncio.run(main(start(NotifierServiceSettings, SERVICE)))
