"""The notifier: plans deliveries from events, and delivers them with retries.

Two durable pull consumers, shared by every replica (none is special):

1. ``notifier`` on ``TP_EVENTS`` (only the event types that notify): each event's deliveries
   (:func:`services.notifier.planning.plan`, from what the read store knows of its people,
   their preferences and their centre's channels) are published to ``TP_NOTIFY``, one message
   per delivery, with a ``Nats-Msg-Id`` of the channel and notification id, so an event handled
   twice (a redelivery, two replicas) plans each delivery once; then the event is acknowledged.
   The consumer starts at the events that arrive after it is first created: a new notifier does
   not send what happened before it existed.
2. ``notifier`` on ``TP_NOTIFY``: each delivery is sent (a signed webhook call, or an e-mail).
   A failure is given back with a negative acknowledgement delayed by
   ``TUTORPULSE_NOTIFIER_RETRY_SECONDS`` * 2^(tries - 1) (at most ``…_MAX_RETRY_SECONDS``), so
   JetStream redelivers it then, to whichever replica asks; after ``TUTORPULSE_NOTIFIER_ATTEMPTS``
   tries it is dead-lettered to ``TP_DLQ`` (``tp.dlq.notifier.<its subject>``, with the last
   error and the number of tries in headers) and ``python -m services.notifier.redeliver`` sends
   it again. The channel is read when the delivery is sent, so a corrected webhook URL is used by
   the next try; a webhook call carries the notification id as its delivery id, the same on every
   try, for receivers to recognise repeats.

Personal texts stay sealed in ``TP_NOTIFY`` (names and addresses from the read models, titles
and bodies rendered with sealed names in them: ``docs/privacy.md``); they are opened for the
delivery's centre just before it is sent (e-mail headers and body, the webhook's JSON), with
the process's one key store. A delivery to a person who was erased is dropped (acknowledged,
counted as ``erased``, logged), never sent; another erased person's texts in it read
"[erased]".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import anyio.to_thread
import httpx
import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError
from prometheus_client import Counter

from services.consumer_pending import Consumer, ConsumerPending
from services.notifier import mail, planning, webhooks
from services.notifier.planning import Delivery
from services.notifier.settings import DeliverySettings
from services.notifier.webhooks import DeliveryFailed
from services.read_side_process import until_done
from shared import events
from shared.events import STREAM_NAME
from shared.events.notifications import NotificationChannel
from shared.http.operations import NatsPing, NotReady, describe, require_key_store
from shared.messaging.auth import EVENTS_STREAM, NOTIFIER_CONSUMER, NOTIFY_STREAM
from shared.notifications import NOTIFYING_EVENTS
from shared.observability.outage import OutageLog
from shared.privacy import KeyStore, PrivacySettings, Revealer
from shared.privacy.erasure import ErasureCheck
from shared.readmodels.documents import CHANNELS
from shared.readmodels.store import ReadStore

log = structlog.get_logger(__name__)

DLQ_PREFIX = f"tp.dlq.{NOTIFIER_CONSUMER}"
ERROR_HEADER = "Tutorpulse-Error"
ATTEMPTS_HEADER = "Tutorpulse-Attempts"

PLANNED = Counter("tutorpulse_notifier_planned_total", "Deliveries planned", ["channel"])
DELIVERIES = Counter(
    "tutorpulse_notifier_deliveries_total",
    "Delivery tries by channel and outcome (delivered, retry, dead_letter, dropped: the centre "
    "has no such channel, erased: the recipient was erased)",
    ["channel", "outcome"],
)

CONSUMERS = (Consumer(EVENTS_STREAM, NOTIFIER_CONSUMER), Consumer(NOTIFY_STREAM, NOTIFIER_CONSUMER))
"""The notifier's two durable consumers, whose backlog ``tutorpulse_consumer_pending`` says
(``services.consumer_pending``)."""


def event_filters() -> list[str]:
    """The subjects of the event types that notify someone."""
    return [f"tp.evt.*.*.*.{t.__name__}" for t in NOTIFYING_EVENTS]


def resealed(text: str, opened: Delivery | None, sealed: Delivery) -> str:
    """``text`` with the opened e-mail address and name of a delivery put back sealed."""
    if opened is None:
        return text
    for plain, kept in ((opened.email, sealed.email), (opened.name, sealed.name)):
        if plain and kept and plain != kept:
            text = text.replace(plain, kept)
    return text


def retry_delay(tries: int, settings: DeliverySettings) -> float:
    """Seconds before the next try, after ``tries`` failed ones."""
    return float(min(settings.retry_seconds * 2 ** max(0, tries - 1), settings.max_retry_seconds))


ERASED_RECIPIENT = "erased"
"""The outcome of a delivery to a person who was erased."""


class NotifierService:
    def __init__(
        self,
        store: ReadStore,
        nc: Client,
        settings: DeliverySettings,
        keys: KeyStore | Callable[[], KeyStore] | None = None,
        privacy: PrivacySettings | None = None,
    ) -> None:
        """``keys``: the key store that opens the sealed texts of each delivery as it is sent
        and tells erased recipients, or how to open one (then opened when the service runs,
        waiting for its database as for the others, and closed when it stops); without it
        deliveries are sent as planned. ``privacy``: its cache's seconds, which the erasure
        check keeps too."""
        self.store = store
        self.nc = nc
        self.settings = settings
        self._privacy = PrivacySettings() if privacy is None else privacy
        self._open_keys = None if keys is None or isinstance(keys, KeyStore) else keys
        self.keys: KeyStore | None = None
        self._revealer: Revealer | None = None
        self._erasures: ErasureCheck | None = None
        if isinstance(keys, KeyStore):
            self._use(keys)
        self._js: JetStreamContext = nc.jetstream()
        self._ping = NatsPing(nc)
        self._stopping = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)
        self._outage = OutageLog("notifier.nats")

    def stop(self) -> None:
        self._stopping.set()

    def _use(self, keys: KeyStore) -> None:
        self.keys = keys
        self._revealer = Revealer(keys)
        self._erasures = ErasureCheck.of(keys, self._privacy)

    async def readiness(self) -> dict[str, Any]:
        if not await self._ping.answers(0.5):
            raise NotReady("NATS does not answer")
        try:
            watermark = await anyio.to_thread.run_sync(self.store.watermark)
        except Exception as error:
            raise NotReady(f"the read store does not answer: {describe(error)}") from error
        if self._open_keys is not None and self.keys is None:
            raise NotReady("waiting for the key store: sealed texts cannot be opened yet")
        if self.keys is not None:
            await require_key_store(self.keys)
        return {"watermark": watermark}

    async def run(self) -> None:
        """Both consumers, and the reading of their pending messages, until :meth:`stop`
        (first the key store, if the service opens it)."""
        opened: KeyStore | None = None
        try:
            if self._open_keys is not None:
                opener = self._open_keys
                opened = await until_done(
                    "notifier",
                    "key_store",
                    lambda: anyio.to_thread.run_sync(opener),
                    self._stopping,
                )
                if opened is None:  # stopped while waiting
                    return
                self._use(opened)
            pending = ConsumerPending(self._js, CONSUMERS)
            await asyncio.gather(
                self._consume_events(), self._consume_deliveries(), pending.run(self._stopping)
            )
        finally:
            await self._http.aclose()
            if opened is not None:
                opened.close()

    # --- consumers --------------------------------------------------------------------------

    async def _subscribe(
        self, stream: str, config: ConsumerConfig
    ) -> JetStreamContext.PullSubscription:
        while True:
            try:
                # Create or update it; one an operator changed beyond update is used as it is.
                with contextlib.suppress(BadRequestError):
                    await self._js.add_consumer(stream, config)
                return await self._js.pull_subscribe_bind(durable=NOTIFIER_CONSUMER, stream=stream)
            except Exception as error:
                if self._stopping.is_set():
                    raise
                log.warning("notifier.subscribe_failed", stream=stream, error=describe(error))
                await self._pause(1.0)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _fetching(
        self, subscription: JetStreamContext.PullSubscription, what: str
    ) -> list[Msg]:
        try:
            messages = await subscription.fetch(self.settings.batch, timeout=1.0)
        except TimeoutError:  # nats-py raises its own or, at times, asyncio's: nothing new
            self._outage.succeeded()
            return []
        except Exception as error:  # NATS away or answering errors: wait and carry on
            self._outage.failed(describe(error))
            log.debug("notifier.fetch_failed", consumer=what, error=describe(error))
            await self._pause(1.0)
            return []
        self._outage.succeeded()
        return messages

    async def _consume_events(self) -> None:
        config = ConsumerConfig(
            name=NOTIFIER_CONSUMER,
            durable_name=NOTIFIER_CONSUMER,
            filter_subjects=event_filters(),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=self.settings.ack_wait,
            max_deliver=-1,
        )
        subscription = await self._subscribe(STREAM_NAME, config)
        while not self._stopping.is_set():
            for message in await self._fetching(subscription, "events"):
                await self._handled("plan", self._plan(message))

    async def _consume_deliveries(self) -> None:
        config = ConsumerConfig(
            name=NOTIFIER_CONSUMER,
            durable_name=NOTIFIER_CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.settings.ack_wait,
            max_deliver=-1,
        )
        subscription = await self._subscribe(NOTIFY_STREAM, config)
        while not self._stopping.is_set():
            messages = await self._fetching(subscription, "deliveries")
            if messages:
                await asyncio.gather(
                    *(self._handled("deliver", self._deliver(m)) for m in messages)
                )

    async def _handled(self, what: str, handling: Awaitable[None]) -> None:
        """Handle one message; a failure of its own (NATS gone mid-ack, say) is logged and the
        message comes back after its ack wait, while the loop carries on."""
        try:
            await handling
        except Exception:
            log.exception("notifier.message_failed", step=what)

    # --- planning ---------------------------------------------------------------------------

    async def _plan(self, message: Msg) -> None:
        try:
            event = events.decode(message.data)
        except Exception as error:  # not an event this version knows: nothing to tell anyone
            log.warning("notifier.undecodable_event", subject=message.subject, error=str(error))
            await message.term()
            return
        try:
            docs = planning.StoreDocuments(self.store, event.centre_id)
            deliveries = await anyio.to_thread.run_sync(lambda: planning.plan(event, docs))
            for delivery in deliveries:
                await self._js.publish(
                    delivery.subject,
                    planning.encode(delivery),
                    stream=NOTIFY_STREAM,
                    headers={"Nats-Msg-Id": delivery.message_id},
                )
                PLANNED.labels(delivery.channel).inc()
        except Exception as error:  # the read store or NATS away: the event comes back
            log.warning("notifier.plan_failed", event_type=event.type_name, error=describe(error))
            with contextlib.suppress(Exception):
                await message.nak(delay=1.0)
            return
        await message.ack()
        if deliveries:
            log.info("notifier.planned", event_type=event.type_name, deliveries=len(deliveries))

    # --- delivering -------------------------------------------------------------------------

    async def _deliver(self, message: Msg) -> None:
        try:
            delivery = planning.decode(message.data)
        except msgspec.DecodeError as error:
            log.warning("notifier.undecodable_delivery", subject=message.subject, error=str(error))
            await message.term()
            return
        channel = delivery.channel
        opened: Delivery | None = None
        try:
            opened = await self._opened(delivery)
            if opened is None:
                await message.ack()
                DELIVERIES.labels(channel, ERASED_RECIPIENT).inc()
                log.info(
                    "notifier.recipient_erased",
                    channel=channel,
                    notification=delivery.notification.notification_id,
                )
                return
            sent = await self._send(opened)
        except DeliveryFailed as error:
            # An SMTP server's refusal may quote the address: it stays sealed in TP_DLQ and logs.
            await self._failed(message, delivery, resealed(str(error), opened, delivery))
            return
        except Exception as error:  # the read store or NATS away: not the receiver's failure
            log.warning("notifier.deliver_failed", error=describe(error))
            with contextlib.suppress(Exception):
                await message.nak(delay=1.0)
            return
        await message.ack()
        DELIVERIES.labels(channel, "delivered" if sent else "dropped").inc()
        log.info(
            "notifier.delivered" if sent else "notifier.dropped",
            channel=channel,
            notification=delivery.notification.notification_id,
        )

    async def _opened(self, delivery: Delivery) -> Delivery | None:
        """``delivery`` with its sealed texts opened for its centre; None if its recipient
        was erased (the key store unreadable: :class:`ErasureCheckUnavailable`, tried again)."""
        revealer, erasures = self._revealer, self._erasures
        if revealer is None or erasures is None:
            return delivery
        centre = delivery.notification.centre_id

        def opened() -> Delivery | None:
            if erasures.erased(centre, UUID(delivery.notification.person_id)):
                return None
            return planning.decode(revealer.json(planning.encode(delivery), centre))

        return await anyio.to_thread.run_sync(opened)

    async def _send(self, delivery: Delivery) -> bool:
        """Send it; False if the centre no longer has the channel (nothing to send to)."""
        centre = delivery.notification.centre_id
        stored = await anyio.to_thread.run_sync(lambda: self.store.get(CHANNELS, centre))
        channels = stored.doc if stored is not None and stored.centre_id == centre else None
        if delivery.channel is NotificationChannel.WEBHOOK:
            if channels is None or not channels.webhook_url or not channels.webhook_secret:
                return False
            await webhooks.call(
                self._http,
                channels.webhook_url,
                delivery.notification,
                channels.webhook_secret,
                private_allowed=self.settings.private_webhooks,
            )
            return True
        if channels is None or not channels.email_enabled or not delivery.email:
            return False
        letter = mail.message(
            delivery.notification,
            to=delivery.email,
            name=delivery.name or "",
            sender=self.settings.mail_from,
        )
        await mail.send(letter, self.settings)
        return True

    async def _failed(self, message: Msg, delivery: Delivery, error: str) -> None:
        tries = message.metadata.num_delivered or 1
        notification = delivery.notification.notification_id
        if tries < self.settings.attempts:
            delay = retry_delay(tries, self.settings)
            log.info(
                "notifier.retry",
                channel=delivery.channel,
                notification=notification,
                tries=tries,
                delay=delay,
                error=error,
            )
            await message.nak(delay=delay)
            DELIVERIES.labels(delivery.channel, "retry").inc()
            return
        try:
            await self._js.publish(
                f"{DLQ_PREFIX}.{message.subject}",
                message.data,
                headers={ERROR_HEADER: error[:300], ATTEMPTS_HEADER: str(tries)},
            )
        except Exception as failure:  # not kept yet: try once more later
            log.warning("notifier.dead_letter_failed", error=describe(failure))
            await message.nak(delay=self.settings.retry_seconds)
            return
        await message.ack()
        DELIVERIES.labels(delivery.channel, "dead_letter").inc()
        log.warning(
            "notifier.dead_lettered",
            channel=delivery.channel,
            notification=notification,
            tries=tries,
            error=error,
        )
