"""The notifier against a real nats-server, a local webhook receiver and a local SMTP server:
a reminder reaches a person's webhook (signed, with its delivery id) and their mailbox (in the
centre's time zone) once; a receiver that keeps failing is tried with back-off, dead-lettered,
and sent again by the redeliver CLI."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from aiosmtpd.controller import Controller
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from services.notifier import redeliver, webhooks
from services.notifier.service import DLQ_PREFIX, NotifierService
from services.notifier.settings import DeliverySettings, RedeliverSettings
from shared import events as ev
from shared.events import subject_for
from shared.events.notifications import (
    NotificationChannel,
    NotificationChannelsConfigured,
    NotificationPreferencesSet,
)
from shared.messaging import ensure_streams
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFIER_CONSUMER
from shared.notifications import NotificationType, local_time
from shared.privacy import KeyStore, PrivacySettings
from shared.readmodels.documents import SESSION
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.settings import load
from shared.tenancy import Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.identity import centre_aggregate_id
from tests.integration.conftest import NatsAs
from tests.readside import demo_events, read_store

pytestmark = pytest.mark.integration

SECRET = "integration-webhook-secret"
STARTS = datetime(2026, 4, 5, 9, 0, tzinfo=UTC)  # Sydney leaves daylight saving that night


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 20) -> None:
    """Wait (polling) until ``check`` holds; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``status`` and keeps what it got."""

    status: int = 204
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    got.url = f"http://{host}:{port}/hook"
    yield got
    await runner.cleanup()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def configured_store(
    folder: Path,
    webhook_url: str,
    history: Sequence[tuple[ev.Event, int]] | None = None,
    chosen_by: Mapping[str, NotificationType] | None = None,
) -> ReadStore:
    """The demo centre (``history``: its events, by default as the demo records them), its
    webhook and e-mail on, and Jane wanting reminders by both (and each of ``chosen_by``, by
    handle, that type of notification)."""
    store = read_store(folder)
    apply_all(store, demo_events() if history is None else history)
    jane = demo_person("jane").id
    at = datetime(2026, 4, 1, tzinfo=UTC)
    common: dict[str, Any] = {"centre_id": DEMO_CENTRE, "occurred_at": at, "aggregate_version": 1}
    channels = NotificationChannelsConfigured(
        **common,
        aggregate_id=uuid5(centre_aggregate_id(DEMO_CENTRE), "notification-channels"),
        actor_id=demo_person("sarah").id,
        actor_role=Role.CENTER_ADMIN,
        webhook_url=webhook_url,
        webhook_secret=SECRET,
        email_enabled=True,
    )
    chosen = [NotificationChannel.WEBHOOK, NotificationChannel.EMAIL]
    preferences = NotificationPreferencesSet(
        **common,
        aggregate_id=uuid5(jane, "inbox"),
        actor_id=jane,
        actor_role=Role.STUDENT,
        person_id=jane,
        channels={NotificationType.SESSION_REMINDER: chosen},
    )
    apply_all(store, [(channels, 900_000), (preferences, 900_001)])
    for number, (handle, kind) in enumerate((chosen_by or {}).items(), start=900_002):
        person = demo_person(handle).id
        choice = NotificationPreferencesSet(
            **common,
            aggregate_id=uuid5(person, "inbox"),
            actor_id=person,
            actor_role=demo_person(handle).role,
            person_id=person,
            channels={kind: chosen},
        )
        apply_all(store, [(choice, number)])
    return store


def janes_reminder(store: ReadStore) -> ev.SessionReminderSent:
    jane = str(demo_person("jane").id)
    session = next(
        s.doc
        for s in store.docs(SESSION)
        if jane in s.doc.students and s.doc.students[jane].enrolled
    )
    return ev.SessionReminderSent(
        centre_id=DEMO_CENTRE,
        aggregate_id=UUID(session.session_id),
        aggregate_version=1_000,
        occurred_at=datetime(2026, 4, 5, 8, 45, tzinfo=UTC),
        actor_id=UUID(int=0),
        actor_role=Role.SYSTEM,
        session_id=UUID(session.session_id),
        starts_at=STARTS,
        minutes_before=15,
    )


async def start_notifier(
    nats_as: NatsAs,
    nc: Client,
    store: ReadStore,
    smtp_port: int,
    keys: Callable[[], KeyStore] | None = None,
    privacy: PrivacySettings | None = None,
    **changes: str,
) -> tuple[NotifierService, asyncio.Task[None]]:
    """``keys``: how the notifier opens its key store (as its process does), if it has one."""
    await ensure_streams((await nats_as("relay")).jetstream())
    settings = load(
        DeliverySettings,
        {
            "TUTORPULSE_SMTP_PORT": str(smtp_port),
            "TUTORPULSE_NOTIFIER_RETRY_SECONDS": "0.1",
            "TUTORPULSE_NOTIFIER_ATTEMPTS": "3",
            "TUTORPULSE_NOTIFIER_TIMEOUT": "2",
            "TUTORPULSE_NOTIFIER_PRIVATE_WEBHOOKS": "yes",  # the receiver is on 127.0.0.1
            **changes,
        },
    )
    service = NotifierService(store, await nats_as("notifier"), settings, keys, privacy)
    running = asyncio.create_task(service.run())

    async def consuming() -> bool:  # it takes events from its consumer's creation on
        try:
            await nc.jetstream().consumer_info(EVENTS_STREAM, NOTIFIER_CONSUMER)
        except NotFoundError:
            return False
        return True

    await eventually(consuming)
    return service, running


async def relay(nc: Client, event: ev.Event, notification_id: int) -> None:
    await nc.jetstream().publish(
        subject_for(event),
        ev.encode(event),
        headers={"Nats-Msg-Id": f"tutorpulse:{notification_id}"},
    )


async def test_a_reminder_reaches_the_webhook_and_the_mailbox_once(
    tmp_path: Path,
    nats_as: NatsAs,
    nc: Client,
    receiver: Receiver,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, smtp_port = mailbox
    store = configured_store(tmp_path, receiver.url)
    service, running = await start_notifier(nats_as, nc, store, smtp_port)
    try:
        event = janes_reminder(store)
        await relay(nc, event, 1_000_000)
        await eventually(lambda: len(receiver.calls) == 1 and len(box.messages) == 1)
        await relay(nc, event, 1_000_001)  # the same event again (a replay): nothing new
        await asyncio.sleep(1.0)
        assert len(receiver.calls) == 1 and len(box.messages) == 1
    finally:
        service.stop()
        await running
    headers, body = receiver.calls[0]
    sent = msgspec.json.decode(body)
    assert sent["notification"]["personId"] == str(demo_person("jane").id)
    assert headers[webhooks.DELIVERY_HEADER] == sent["deliveryId"]
    assert sent["deliveryId"] == sent["notification"]["notificationId"]
    assert webhooks.verify(
        SECRET, body, headers[webhooks.TIMESTAMP_HEADER], headers[webhooks.SIGNATURE_HEADER]
    )
    (letter,) = box.messages
    assert letter["To"] == f"Jane Johnson <{demo_person('jane').email}>"
    assert letter["Subject"].endswith("starts in 15 minutes")
    payload = letter.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert local_time(STARTS, "Australia/Sydney") in payload.decode()  # Sun 5 Apr, 19:00 AEST
    assert "AEST" in local_time(STARTS, "Australia/Sydney")


async def test_a_failing_receiver_is_retried_then_dead_lettered_and_redelivered(
    tmp_path: Path,
    nats_as: NatsAs,
    nc: Client,
    receiver: Receiver,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, smtp_port = mailbox
    receiver.status = 500
    store = configured_store(tmp_path, receiver.url)
    service, running = await start_notifier(nats_as, nc, store, smtp_port)
    js = nc.jetstream()

    async def dead_letters() -> int:
        info = await js.stream_info(DLQ_STREAM, subjects_filter=f"{DLQ_PREFIX}.>")
        return sum((info.state.subjects or {}).values())

    try:
        await relay(nc, janes_reminder(store), 1_000_000)
        await eventually(lambda: len(box.messages) == 1)  # e-mail is not held up by the webhook

        async def dead_lettered() -> bool:
            return await dead_letters() == 1

        await eventually(dead_lettered, seconds=30)
        assert len(receiver.calls) == 3  # TUTORPULSE_NOTIFIER_ATTEMPTS
        assert len({h[webhooks.DELIVERY_HEADER] for h, _ in receiver.calls}) == 1
        stamps = [int(h[webhooks.TIMESTAMP_HEADER]) for h, _ in receiver.calls]
        assert stamps == sorted(stamps)

        receiver.status = 200
        notifier = await nats_as("notifier")
        assert await redeliver.run(["--all"], load(RedeliverSettings, {}), notifier) == 0
        await eventually(lambda: len(receiver.calls) == 4)
        assert await dead_letters() == 0
        assert len(box.messages) == 1
    finally:
        service.stop()
        await running


async def test_two_replicas_deliver_each_notification_once(
    tmp_path: Path,
    nats_as: NatsAs,
    nc: Client,
    receiver: Receiver,
    mailbox: tuple[Mailbox, int],
) -> None:
    box, smtp_port = mailbox
    store = configured_store(tmp_path, receiver.url)
    replicas = [await start_notifier(nats_as, nc, store, smtp_port) for _ in range(2)]
    try:
        event = janes_reminder(store)
        for n in range(3):  # relayed again by a relay that lost its position: one event still
            await relay(nc, event, 2_000_000 + n)
        await eventually(lambda: len(receiver.calls) >= 1 and len(box.messages) >= 1)
        await asyncio.sleep(1.0)
        assert len(receiver.calls) == 1 and len(box.messages) == 1
    finally:
        for service, _ in replicas:
            service.stop()
        for _, running in replicas:
            await running
