"""The projection service: JetStream events in, read models and change notices out.

A durable pull consumer (``projections``) shared by every replica. Each fetched batch is
applied in one read-store transaction together with the per-aggregate versions that make it
exactly-once (see ``store.py``); only after that commit are the messages acked. Replicas
compete for messages, so an event may arrive before an earlier event of its aggregate that
another replica holds: it is refused (negative ack with a short delay) and applied once its
predecessor is in, so every replica count yields the same read models.

A handler error never drops an event: the message is redelivered with exponential back-off,
and after ``TUTORPULSE_PROJECTION_POISON_AFTER`` failed deliveries it is copied to the
dead-letter stream (``tp.dlq.projections.<subject>``), counted and logged, then terminated.

The consumer loop uses nats-py directly: FastStream's batch pull subscriber waits for a full
batch or its timeout (adding that wait to every event's latency), and its non-batch mode
handles a fetched batch concurrently, which would reorder events.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import anyio.to_thread
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter, Gauge, Histogram

from services.projections.deltas import notice_for
from services.projections.projector import Batch, Change, OutOfOrder, apply
from services.projections.store import ReadStore
from shared import events
from shared.events import STREAM_NAME, STREAM_SUBJECTS

log = structlog.get_logger(__name__)

DURABLE = "projections"

APPLIED = Counter("tutorpulse_projection_events_total", "Events handled", ["outcome"])
DEAD_LETTERS = Counter("tutorpulse_projection_dead_letters_total", "Events sent to the dead-letter stream")
WATERMARK = Gauge("tutorpulse_projection_watermark", "Notification id up to which read models are complete")
BATCH_SECONDS = Histogram("tutorpulse_projection_batch_seconds", "Time to apply and ack one batch",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))


@dataclass
class Settings:
    batch_size: int = int(os.environ.get("TUTORPULSE_PROJECTION_BATCH", "200"))
    poison_after: int = int(os.environ.get("TUTORPULSE_PROJECTION_POISON_AFTER", "5"))
    retry_delay: float = 0.05
    max_backoff: float = 30.0
    ack_wait: float = 30.0


@dataclass
class _Outcome:
    """What became of each message of a batch."""

    applied: list[int] = field(default_factory=list)
    later: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


class ProjectionService:
    def __init__(self, store: ReadStore, nc: Client, settings: Settings | None = None,
                 durable: str = DURABLE) -> None:
        self._store = store
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = settings or Settings()
        self._durable = durable
        self._stopping = asyncio.Event()
        self.watermark = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await anyio.to_thread.run_sync(self._store.ensure_ready)
        subscription = await self._js.pull_subscribe(
            STREAM_SUBJECTS, durable=self._durable, stream=STREAM_NAME,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                  ack_wait=self._settings.ack_wait, max_deliver=-1,
                                  max_ack_pending=20_000))
        self.watermark = await anyio.to_thread.run_sync(self._store.watermark)
        log.info("projections.consuming", durable=self._durable, watermark=self.watermark)
        while not self._stopping.is_set():
            try:
                batch = await subscription.fetch(self._settings.batch_size, timeout=0.5)
            except TimeoutError:
                await self._advance_watermark()  # acks of other replicas may have moved it
                continue
            except Exception as error:  # reconnects are handled by nats-py
                log.warning("projections.fetch_failed", error=str(error))
                await asyncio.sleep(0.5)
                continue
            await self.handle(batch)

    async def handle(self, batch: list[Msg]) -> None:
        started = time.perf_counter()
        decoded: list[tuple[events.Event, int] | None] = []
        for message in batch:
            try:
                decoded.append((events.decode(message.data),
                                int((message.headers or {})["Tp-Notification-Id"])))
            except Exception:  # an undecodable message is poison, not a crash
                decoded.append(None)
        outcome = await anyio.to_thread.run_sync(self._apply, decoded)
        for position, index in enumerate(outcome.applied):
            if position == len(outcome.applied) - 1:
                # Wait for the server to take the last ack, so the ack floor read below is current.
                await batch[index].ack_sync()
            else:
                await batch[index].ack()
        for index in outcome.later:
            await batch[index].nak(delay=self._settings.retry_delay)
        for index, reason in outcome.failed.items():
            await self._failed(batch[index], reason)
        for change in outcome.changes:
            subject, payload = notice_for(change)
            await self._nc.publish(subject, payload)
        APPLIED.labels("applied").inc(len(outcome.applied))
        APPLIED.labels("out_of_order").inc(len(outcome.later))
        APPLIED.labels("failed").inc(len(outcome.failed))
        await self._advance_watermark()
        BATCH_SECONDS.observe(time.perf_counter() - started)

    def _apply(self, decoded: list[tuple[events.Event, int] | None]) -> _Outcome:
        outcome = _Outcome()
        try:
            with self._store.transaction() as tx:
                batch = Batch(tx)
                batch.prefetch(item[0] for item in decoded if item is not None)
                for index, item in enumerate(decoded):
                    if item is None:
                        outcome.failed[index] = "undecodable event"
                        continue
                    try:
                        apply(batch, *item)
                        outcome.applied.append(index)
                    except OutOfOrder:
                        outcome.later.append(index)
                outcome.changes = batch.flush()
            return outcome
        except Exception:  # find the one event that fails, apply the others
            log.warning("projections.batch_failed", size=len(decoded), exc_info=True)
        outcome = _Outcome()
        for index, item in enumerate(decoded):
            if item is None:
                outcome.failed[index] = "undecodable event"
                continue
            try:
                with self._store.transaction() as tx:
                    batch = Batch(tx)
                    apply(batch, *item)
                    changes = batch.flush()
                outcome.changes += changes
                outcome.applied.append(index)
            except OutOfOrder:
                outcome.later.append(index)
            except self._store.transient_errors:  # e.g. a deadlock with another replica: try later
                outcome.later.append(index)
            except Exception as error:
                outcome.failed[index] = f"{type(error).__name__}: {error}"
        return outcome

    async def _failed(self, message: Msg, reason: str) -> None:
        deliveries = message.metadata.num_delivered or 1
        log.error("projections.event_failed", subject=message.subject, deliveries=deliveries, reason=reason)
        if deliveries < self._settings.poison_after:
            backoff = min(self._settings.max_backoff, 0.5 * 2 ** (deliveries - 1))
            await message.nak(delay=backoff)
            return
        headers = dict(message.headers or {})
        headers |= {"Tp-Dlq-Reason": reason[:500], "Tp-Dlq-Consumer": self._durable,
                    "Nats-Msg-Id": f"dlq:{self._durable}:{headers.get('Nats-Msg-Id', message.reply)}"}
        await self._js.publish(f"tp.dlq.{self._durable}.{message.subject}", message.data, headers=headers)
        await message.term()
        DEAD_LETTERS.inc()
        log.error("projections.dead_lettered", subject=message.subject, reason=reason)

    async def _advance_watermark(self) -> None:
        """Everything up to the consumer's ack floor is in the read models: record its position."""
        try:
            info = await self._js.consumer_info(STREAM_NAME, self._durable)
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            if not floor:
                return
            message = await self._js.get_msg(STREAM_NAME, floor)
            position = int((message.headers or {}).get("Tp-Notification-Id", 0))
        except Exception as error:  # the next batch tries again
            log.warning("projections.watermark_unknown", error=str(error))
            return
        if position > self.watermark:
            await anyio.to_thread.run_sync(self._store.advance_watermark, position)
            self.watermark = position
            WATERMARK.set(position)


async def wait_for_watermark(store: ReadStore, position: int, timeout: float) -> bool:
    """For queries given a read-your-writes position: wait (bounded) until it is reflected."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if await anyio.to_thread.run_sync(store.watermark) >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


