"""What the projection service reads from JetStream for its metrics besides its consumer's
backlog (``services.consumer_pending``, shared with the scheduler and the notifier): how full
the streams it reads are (next to its dead-letter count)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from nats.js import JetStreamContext
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

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
