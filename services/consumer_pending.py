"""The backlog of every durable consumer as metrics: ``tutorpulse_consumer_pending`` and
``tutorpulse_consumer_ack_pending``, filled by the projection service from the consumer info it
reads for its watermark and by :class:`ConsumerPending` for the scheduler's and the notifier's,
so one alert and one dashboard panel cover every consumer.

Each consumer's info is read from JetStream once per round (every ``REFRESH_SECONDS`` while the
service runs), whatever the traffic: one request per consumer and round, never one per message,
as the projections read theirs at most every quarter second while busy. A consumer that does
not answer (NATS away, not created yet) keeps its last values until a later round reads it.

A JetStream consumer is named within its stream, and the scheduler and the notifier each have
one named after themselves on ``TP_EVENTS`` and another of the same name on a stream of their
own; the ``durable`` label is the name for a consumer of ``TP_EVENTS`` (as the projections'
``projections``) and ``<name>/<stream>`` for the other (``scheduler/TP_TIMERS``,
``notifier/TP_NOTIFY``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js.api import ConsumerInfo
from prometheus_client import Gauge

from shared.messaging.auth import EVENTS_STREAM

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 1.0
"""Seconds between two readings of the consumers' info."""

INFO_TIMEOUT = 2.0

CONSUMER_PENDING = Gauge(
    "tutorpulse_consumer_pending",
    "Messages of the stream the durable consumer has not delivered yet (its backlog)",
    ["durable"],
    multiprocess_mode="max",
)
CONSUMER_ACK_PENDING = Gauge(
    "tutorpulse_consumer_ack_pending",
    "Messages delivered to the durable consumer and not acknowledged yet",
    ["durable"],
    multiprocess_mode="max",
)


def record_consumer(durable: str, info: ConsumerInfo) -> None:
    CONSUMER_PENDING.labels(durable=durable).set(info.num_pending or 0)
    CONSUMER_ACK_PENDING.labels(durable=durable).set(info.num_ack_pending or 0)


@dataclass(frozen=True)
class Consumer:
    stream: str
    durable: str

    @property
    def label(self) -> str:
        """Its ``durable`` label (see the module's doc)."""
        return self.durable if self.stream == EVENTS_STREAM else f"{self.durable}/{self.stream}"


class ConsumerPending:
    """Keeps the pending gauges of ``consumers`` up to date while :meth:`run` runs. ``js`` is
    the service's JetStream context (nats-py's, or FastStream's which is the same)."""

    def __init__(
        self, js: Any, consumers: Iterable[Consumer], every: float = REFRESH_SECONDS
    ) -> None:
        self._js = js
        self.consumers = tuple(consumers)
        self._every = every

    async def refresh(self) -> None:
        """Read each consumer's info once and record it."""
        for consumer in self.consumers:
            try:
                info = await asyncio.wait_for(
                    self._js.consumer_info(consumer.stream, consumer.durable), INFO_TIMEOUT
                )
            except Exception as error:
                log.debug(
                    "consumer_pending.unknown",
                    stream=consumer.stream,
                    durable=consumer.durable,
                    error=f"{type(error).__name__}: {error}",
                )
                continue
            record_consumer(consumer.label, info)

    async def run(self, stopping: asyncio.Event) -> None:
        """Refresh every ``every`` seconds until ``stopping`` is set (or it is cancelled)."""
        while not stopping.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._every)
