"""What the projection service reads from JetStream for its metrics: its durable consumer's
pending and unacknowledged messages (from the consumer info it reads for its watermark) and how
full the streams it reads are (next to its dead-letter count)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

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
STREAM_BYTES = Gauge(
    "tutorpulse_jetstream_stream_bytes",
    "Bytes a JetStream stream holds",
    ["stream"],
    multiprocess_mode="max",
)
STREAM_MAX_BYTES = Gauge(
    "tutorpulse_jetstream_stream_max_bytes",
    "The stream's byte limit (-1: none; the server's storage is then the limit)",
    ["stream"],
    multiprocess_mode="max",
)

STREAM_INFO_TIMEOUT = 2.0


def record_consumer(durable: str, info: ConsumerInfo) -> None:
    CONSUMER_PENDING.labels(durable=durable).set(info.num_pending or 0)
    CONSUMER_ACK_PENDING.labels(durable=durable).set(info.num_ack_pending or 0)


async def record_streams(js: JetStreamContext, streams: Iterable[str]) -> None:
    """Each stream's bytes and byte limit; a stream that does not answer in time keeps its last
    values (the next round tries again)."""
    for stream in streams:
        try:
            info = await asyncio.wait_for(js.stream_info(stream), STREAM_INFO_TIMEOUT)
            held, limit = info.state.bytes or 0, info.config.max_bytes
        except Exception as error:
            log.debug("projections.stream_info_failed", stream=stream, error=str(error))
            continue
        STREAM_BYTES.labels(stream=stream).set(held)
        STREAM_MAX_BYTES.labels(stream=stream).set(-1 if limit is None else limit)
