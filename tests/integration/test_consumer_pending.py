"""The scheduler's and the notifier's consumers report their backlog as the projections do
(``tutorpulse_consumer_pending`` by ``durable``), against a real nats-server and as the services'
own NATS users: while their handling is held, the messages published to their streams show as
pending; once it goes on, the figure falls back to 0."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faststream.nats import NatsMessage
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from services.command.application import TutoringCentres
from services.notifier import planning
from services.notifier.service import NotifierService
from services.notifier.settings import DeliverySettings
from services.scheduler.clock import FastClock
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from services.scheduler.timers import PLANNED_EVENTS
from shared import events
from shared.events.notifications import NotificationChannel
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.messaging.auth import NOTIFY_STREAM
from shared.notifications import Notification, NotificationPriority, NotificationType
from shared.settings import load
from tests.builders import register_centre
from tests.integration.conftest import NatsAs
from tests.readside import read_store
from tests.support.servers import NatsServer
from tests.support.timers import eventually, relay_once, session

pytestmark = pytest.mark.integration


def pending(durable: str) -> float | None:
    return REGISTRY.get_sample_value("tutorpulse_consumer_pending", {"durable": durable})


def unacknowledged(durable: str) -> float | None:
    return REGISTRY.get_sample_value("tutorpulse_consumer_ack_pending", {"durable": durable})


class HeldScheduler(Scheduler):
    """The scheduler, each event's handling waiting for ``go``."""

    go = asyncio.Event()

    async def on_event(self, msg: NatsMessage) -> None:
        await self.go.wait()
        await super().on_event(msg)


async def test_the_scheduler_reports_the_events_waiting_for_it(
    tmp_path: Path, nats_server: NatsServer, nats_as: NatsAs
) -> None:
    await ensure_streams((await nats_as("relay")).jetstream())
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    settings = load(
        SchedulerSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
            **nats_server.env_for("scheduler"),
        },
    )
    HeldScheduler.go = asyncio.Event()
    scheduler = HeldScheduler(settings, centres, FastClock(rate=1.0, epoch=datetime.now(UTC)))
    try:
        await scheduler.connect()
        await scheduler.start()
        # Both consumers are read, the timers' one with nothing waiting.
        await eventually(lambda: pending("scheduler/TP_TIMERS") == 0, "the timers' figure")

        alpha = register_centre(centres, "alpha")
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        for hour in range(6):
            session(centres, alpha, starts_at=starts + timedelta(hours=hour))
        await relay_once((await nats_as("relay")).jetstream(), centres, 0)
        planned = sum(
            isinstance(events.decode(n.state, n.topic), PLANNED_EVENTS)
            for n in centres.recorder.select_notifications(1, 1_000)
        )
        assert planned >= 6

        # One event at a time is delivered (and held); the others wait.
        await eventually(
            lambda: pending("scheduler") == planned - 1 and unacknowledged("scheduler") == 1,
            f"{planned - 1} events pending, one held",
        )

        HeldScheduler.go.set()
        await eventually(
            lambda: pending("scheduler") == 0 and unacknowledged("scheduler") == 0,
            "the backlog worked off",
        )
        assert scheduler.tally.events == planned
    finally:
        HeldScheduler.go.set()
        await scheduler.stop()
        centres.close()


class HeldNotifier(NotifierService):
    """The notifier, each delivery waiting for ``go``."""

    go = asyncio.Event()

    async def _deliver(self, message: Msg) -> None:
        await self.go.wait()
        await super()._deliver(message)


def delivery(number: int) -> planning.Delivery:
    """A webhook delivery to a centre without channels (sent nowhere: dropped and acked)."""
    return planning.Delivery(
        channel=NotificationChannel.WEBHOOK,
        notification=Notification(
            notification_id=f"pending-{number}",
            centre_id="alpha",
            person_id="someone",
            type=NotificationType.SESSION_REMINDER,
            priority=NotificationPriority.NORMAL,
            title="Fractions starts in 15 minutes",
            body="Fractions starts at 09:00.",
            link="/api/v1/sessions",
            at="2026-04-05T08:45:00Z",
            source_event="SessionReminderSent",
        ),
    )


async def test_the_notifier_reports_the_deliveries_waiting_for_it(
    tmp_path: Path, nats_as: NatsAs, nc: Client
) -> None:
    await ensure_streams((await nats_as("relay")).jetstream())
    settings = dataclasses.replace(load(DeliverySettings, {}), batch=5)
    store = read_store(tmp_path)
    HeldNotifier.go = asyncio.Event()
    service = HeldNotifier(store, await nats_as("notifier"), settings)
    running = asyncio.create_task(service.run())
    try:
        # Both consumers are read, the events' one with nothing waiting.
        await eventually(lambda: pending("notifier") == 0, "the events' figure")

        js = nc.jetstream()
        for number in range(20):
            sent = delivery(number)
            await js.publish(
                sent.subject,
                planning.encode(sent),
                stream=NOTIFY_STREAM,
                headers={"Nats-Msg-Id": sent.message_id},
            )

        # Held: some delivered and unacknowledged, the rest waiting, none handled. At most two
        # batches (10) are delivered: a fetch that timed out on the client a moment before the
        # messages came can still be answered by the server, beside the next fetch's batch.
        def held() -> bool:
            waiting, delivered = pending("notifier/TP_NOTIFY"), unacknowledged("notifier/TP_NOTIFY")
            return (
                delivered is not None
                and 1 <= delivered <= 2 * settings.batch
                and waiting == 20 - delivered
            )

        await eventually(held, "the 20 deliveries pending or held")

        HeldNotifier.go.set()
        await eventually(
            lambda: (
                pending("notifier/TP_NOTIFY") == 0 and unacknowledged("notifier/TP_NOTIFY") == 0
            ),
            "the deliveries worked off",
        )
    finally:
        HeldNotifier.go.set()
        service.stop()
        await running
        store.close()
