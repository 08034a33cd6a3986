"""The relay: committed events, in notification order, from the event store to JetStream.

Nothing is written twice: the store is the only thing commands write to, and the relay tails
its notification log. Each batch is published with asynchronous acks; the relay's position is
recorded in the store's tracking table only after every message of the batch was acked. After
a crash the relay republishes from its recorded position, and JetStream drops the repeats by
their ``Nats-Msg-Id`` (``<store>:<notification id>``), which the stream keeps for its
duplicate window (infra/nats/streams.json).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
import structlog
from eventsourcing.persistence import Notification, Tracking, TrackingRecorder
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from services.relay.lease import Lease, LeaseLost
from shared.events import STREAM_NAME, decode_header, subject_for
from shared.eventstore import EventStore
from shared.eventstore.store import STORE_NAME

log = structlog.get_logger(__name__)

TRACKING_NAME = "relay.nats"

PUBLISHED = Counter("tutorpulse_relay_published_total", "Events published to JetStream")
DUPLICATES = Counter(
    "tutorpulse_relay_duplicates_total", "Publishes JetStream acked as duplicates (after a restart)"
)
POSITION = Gauge("tutorpulse_relay_position", "Last notification id acked by JetStream")
LAG = Gauge("tutorpulse_relay_lag_events", "Committed events not yet acked by JetStream")
LEADER = Gauge("tutorpulse_relay_leader", "1 while this relay holds the publishing lease")
BATCH_SECONDS = Histogram(
    "tutorpulse_relay_batch_seconds", "Time to publish and ack one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def message_id(notification_id: int) -> str:
    return f"{STORE_NAME}:{notification_id}"


@dataclass
class RelaySettings:
    batch_size: int = 500
    idle_poll_seconds: float = 0.005
    max_idle_poll_seconds: float = 0.05
    lease_retry_seconds: float = 1.0
    lease_confirm_seconds: float = 2.0


class Relay:
    def __init__(
        self,
        store: EventStore,
        tracking: TrackingRecorder,
        js: JetStreamContext,
        lease: Lease,
        settings: RelaySettings | None = None,
    ) -> None:
        self._store = store
        self._tracking = tracking
        self._js = js
        self._lease = lease
        self._settings = settings or RelaySettings()
        self._stopping = asyncio.Event()
        self.position = 0
        self.is_leader = False

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Wait for the lease, then relay until stopped; a lost lease sends it back to waiting."""
        while not self._stopping.is_set():
            if not await anyio.to_thread.run_sync(self._lease.try_acquire):
                log.info("relay.standby", reason="another relay holds the lease")
                await self._sleep(self._settings.lease_retry_seconds)
                continue
            self.is_leader = True
            LEADER.set(1)
            log.info("relay.leading")
            try:
                await self._relay_while_leading()
            except LeaseLost as error:
                log.error("relay.lease_lost", reason=str(error))
            finally:
                self.is_leader = False
                LEADER.set(0)
                await anyio.to_thread.run_sync(self._lease.release)

    async def _relay_while_leading(self) -> None:
        self.position = await anyio.to_thread.run_sync(self._recorded_position)
        POSITION.set(self.position)
        log.info("relay.resuming", position=self.position)
        idle = self._settings.idle_poll_seconds
        confirmed_at = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() - confirmed_at > self._settings.lease_confirm_seconds:
                await anyio.to_thread.run_sync(self._lease.confirm)
                confirmed_at = time.monotonic()
            batch = await anyio.to_thread.run_sync(self._next_batch)
            if not batch:
                LAG.set(0)
                await self._sleep(idle)
                idle = min(idle * 2, self._settings.max_idle_poll_seconds)
                continue
            idle = self._settings.idle_poll_seconds
            await self._publish(batch)

    def _recorded_position(self) -> int:
        return self._tracking.max_tracking_id(TRACKING_NAME) or 0

    def _next_batch(self) -> Sequence[Notification]:
        return self._store.recorder.select_notifications(
            start=self.position, limit=self._settings.batch_size, inclusive_of_start=False
        )

    async def _publish(self, batch: Sequence[Notification]) -> None:
        started = time.perf_counter()
        acks = []
        for notification in batch:
            header = decode_header(notification.state)
            acks.append(await self._js.publish_async(
                subject_for(header),
                notification.state,
                stream=STREAM_NAME,
                headers={
                    "Nats-Msg-Id": message_id(notification.id),
                    "Tp-Notification-Id": str(notification.id),
                    "Tp-Event-Type": notification.topic,
                },
            ))
        results = await asyncio.gather(*acks)
        last = batch[-1].id
        await anyio.to_thread.run_sync(
            self._tracking.insert_tracking, Tracking(TRACKING_NAME, last)
        )
        self.position = last
        duplicates = sum(1 for ack in results if ack.duplicate)
        PUBLISHED.inc(len(results) - duplicates)
        DUPLICATES.inc(duplicates)
        POSITION.set(last)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if len(batch) == self._settings.batch_size:
            head = await anyio.to_thread.run_sync(self._store.recorder.max_notification_id)
            LAG.set(max(0, (head or last) - last))
        else:
            LAG.set(0)
        log.debug("relay.batch", size=len(batch), position=last, duplicates=duplicates)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
