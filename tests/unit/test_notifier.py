"""The notifier's parts without a network: signatures, back-off, what is planned, the e-mail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid5

import msgspec
import pytest

from services.notifier import mail, planning, webhooks
from services.notifier.service import event_filters, retry_delay
from services.notifier.settings import DeliverySettings
from shared import events as ev
from shared.events.notifications import (
    NotificationChannel,
    NotificationChannelsConfigured,
    NotificationPreferencesSet,
)
from shared.notifications import Notification, NotificationPriority, NotificationType
from shared.readmodels.documents import SESSION
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.settings import SettingsError, load
from shared.tenancy import Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.identity import centre_aggregate_id
from tests.readside import demo_events, read_store

SECRET = "a-secret-of-twenty-chars"
NOTIFICATION = Notification(
    notification_id="0b0c7f3e-5d1a-5a3e-8f57-1f4b2f0a9d11",
    centre_id=DEMO_CENTRE,
    person_id=str(demo_person("jane").id),
    type=NotificationType.SESSION_REMINDER,
    priority=NotificationPriority.NORMAL,
    title="Fractions clinic starts in 15 minutes",
    body="Fractions clinic starts at Sun 6 Apr 2025, 09:30 AEST.",
    link="/api/v1/sessions/x/control-center",
    at="2025-04-05T23:15:00.000000Z",
    source_event="SessionReminderSent",
)


def test_a_signed_body_verifies_and_any_change_does_not() -> None:
    body, headers = webhooks.request(NOTIFICATION, SECRET, now=1_000_000)
    assert headers[webhooks.DELIVERY_HEADER] == NOTIFICATION.notification_id
    stamp, signed = headers[webhooks.TIMESTAMP_HEADER], headers[webhooks.SIGNATURE_HEADER]
    assert signed.startswith("v1=") and stamp == "1000000"
    assert webhooks.verify(SECRET, body, stamp, signed, now=1_000_010)
    assert not webhooks.verify("another-secret-entirely", body, stamp, signed, now=1_000_010)
    assert not webhooks.verify(SECRET, body + b" ", stamp, signed, now=1_000_010)
    assert not webhooks.verify(SECRET, body, "1000001", signed, now=1_000_010)
    assert not webhooks.verify(SECRET, body, stamp, signed, now=1_000_000 + 301)  # too old
    sent = msgspec.json.decode(body)
    assert sent["deliveryId"] == NOTIFICATION.notification_id
    assert sent["notification"]["title"] == NOTIFICATION.title


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"42.{}", hashlib.sha256).hexdigest()
    assert webhooks.signature(SECRET, 42, b"{}") == f"v1={expected}"


def test_retries_back_off_exponentially_up_to_the_limit() -> None:
    settings = load(
        DeliverySettings,
        {"TUTORPULSE_NOTIFIER_RETRY_SECONDS": "2", "TUTORPULSE_NOTIFIER_MAX_RETRY_SECONDS": "30"},
    )
    assert [retry_delay(n, settings) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_the_event_consumer_takes_only_events_that_notify() -> None:
    filters = event_filters()
    assert "tp.evt.*.*.*.SessionReminderSent" in filters
    assert not any(f.endswith(".HelpRequestRaised") for f in filters)


def test_the_email_has_the_title_the_local_time_and_a_stable_message_id() -> None:
    letter = mail.message(
        NOTIFICATION, to="jane@example.org", name="Jane Johnson", sender="tp <n@example.org>"
    )
    assert letter["Subject"] == NOTIFICATION.title
    assert letter["To"] == "Jane Johnson <jane@example.org>"
    assert letter["Message-ID"] == f"<{NOTIFICATION.notification_id}@notifications.tutorpulse>"
    assert "09:30 AEST" in letter.get_content()


def _store(folder: Path) -> ReadStore:
    store = read_store(folder)
    apply_all(store, demo_events())
    return store


def _configure(store: ReadStore, *, webhook: bool, email: bool) -> None:
    jane = demo_person("jane").id
    at = datetime(2026, 12, 3, tzinfo=UTC)
    common = {"centre_id": DEMO_CENTRE, "occurred_at": at, "aggregate_version": 1}
    channels = NotificationChannelsConfigured(
        **common,  # type: ignore[arg-type]
        aggregate_id=uuid5(centre_aggregate_id(DEMO_CENTRE), "notification-channels"),
        actor_id=demo_person("sarah").id,
        actor_role=Role.CENTER_ADMIN,
        webhook_url="https://hooks.example.org/tp" if webhook else None,
        webhook_secret=SECRET if webhook else None,
        email_enabled=email,
    )
    preferences = NotificationPreferencesSet(
        **common,  # type: ignore[arg-type]
        aggregate_id=uuid5(jane, "inbox"),
        actor_id=jane,
        actor_role=Role.STUDENT,
        person_id=jane,
        channels={
            NotificationType.SESSION_REMINDER: [
                NotificationChannel.EMAIL,
                NotificationChannel.WEBHOOK,
            ]
        },
    )
    apply_all(store, [(channels, 900_000), (preferences, 900_001)])


def _janes_reminder(store: ReadStore) -> ev.SessionReminderSent:
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
        occurred_at=datetime(2026, 12, 3, 8, 45, tzinfo=UTC),
        actor_id=UUID(int=0),
        actor_role=Role.SYSTEM,
        session_id=UUID(session.session_id),
        starts_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        minutes_before=15,
    )


def test_deliveries_follow_each_persons_choice_and_the_centres_channels(tmp_path: Path) -> None:
    store = _store(tmp_path)
    event = _janes_reminder(store)
    docs = planning.StoreDocuments(store, DEMO_CENTRE)
    assert planning.plan(event, docs) == []  # no channels yet
    _configure(store, webhook=True, email=True)
    planned = planning.plan(event, docs)
    jane = str(demo_person("jane").id)
    assert {(d.channel, d.notification.person_id) for d in planned} == {
        (NotificationChannel.WEBHOOK, jane),
        (NotificationChannel.EMAIL, jane),
    }  # the others told chose no channel: the inbox only
    email = next(d for d in planned if d.channel is NotificationChannel.EMAIL)
    assert (email.email, email.name) == (demo_person("jane").email, "Jane Johnson")
    assert email.subject == (f"tp.notify.{DEMO_CENTRE}.EMAIL.{email.notification.notification_id}")
    assert planning.decode(planning.encode(email)) == email


def test_a_channel_the_centre_turned_off_is_not_planned(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _configure(store, webhook=False, email=True)
    planned = planning.plan(_janes_reminder(store), planning.StoreDocuments(store, DEMO_CENTRE))
    assert [d.channel for d in planned] == [NotificationChannel.EMAIL]


def test_another_centres_documents_are_not_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _configure(store, webhook=True, email=True)
    elsewhere = planning.StoreDocuments(store, "elsewhere")
    assert planning.plan(_janes_reminder(store), elsewhere) == []


async def test_webhooks_to_private_addresses_are_not_called_unless_allowed() -> None:
    import httpx
    import pytest

    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
            with pytest.raises(webhooks.DeliveryFailed, match="private address"):
                await webhooks.call(client, url, NOTIFICATION, SECRET)
        assert calls == []
        status = await webhooks.call(
            client, "http://127.0.0.1:9/hook", NOTIFICATION, SECRET, private_allowed=True
        )
        assert status == 204 and len(calls) == 1
        assert calls[0].headers[webhooks.DELIVERY_HEADER] == NOTIFICATION.notification_id


async def test_a_receiver_answering_other_than_2xx_fails_the_try() -> None:
    import httpx
    import pytest

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(410))
    ) as client:
        with pytest.raises(webhooks.DeliveryFailed, match="410"):
            await webhooks.call(
                client, "http://[::1]/x", NOTIFICATION, SECRET, private_allowed=True
            )


def test_a_delivery_is_held_longer_than_a_try_may_take() -> None:
    """An ack wait shorter than a try's timeout would hand a delivery still being tried to
    another replica, which would deliver it again."""
    with pytest.raises(SettingsError, match=r"TUTORPULSE_NOTIFIER_ACK_WAIT .* must be longer than"):
        load(
            DeliverySettings,
            {"TUTORPULSE_NOTIFIER_ACK_WAIT": "5", "TUTORPULSE_NOTIFIER_TIMEOUT": "10"},
        )
    held = load(DeliverySettings, {"TUTORPULSE_NOTIFIER_ACK_WAIT": "120"})
    assert held.ack_wait == 120.0
