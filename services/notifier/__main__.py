"""``python -m services.notifier``: the notifier with /health, /ready, /metrics (port 8016).

``/ready`` is 200 while NATS answers a ping and the read store answers; while NATS or the read
store cannot be reached at start, or the streams do not exist yet (the relay creates them), it
is 503 and says what it waits for (``services.read_side_process``). SIGTERM stops it (messages
it has not acknowledged go to another replica after their ack wait).
"""

from __future__ import annotations

import asyncio

from services.notifier.service import NotifierService
from services.notifier.settings import NotifierServiceSettings
from services.read_side_process import run_read_side_process
from services.settings import start
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFY_STREAM

SERVICE = "notifier"


async def main(settings: NotifierServiceSettings) -> None:
    await run_read_side_process(
        SERVICE,
        settings,
        lambda store, nc: NotifierService(store, nc, settings.delivery),
        streams=(EVENTS_STREAM, DLQ_STREAM, NOTIFY_STREAM),
    )


if __name__ == "__main__":
    asyncio.run(main(start(NotifierServiceSettings, SERVICE)))
