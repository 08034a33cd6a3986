from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

log = structlog.get_logger(__name__)

_STREAMS_FILE = Path(__file__).resolve().parents[2] / "infra" / "nats" / "streams.json"


def nats_url() -> str:
    """``TUTORPULSE_NATS_URL``, default ``nats://127.0.0.1:4222``."""
    return os.environ.get("TUTORPULSE_NATS_URL", "nats://127.0.0.1:4222")


async def connect(url: str | None = None, *, name: str) -> Client:
    async def on_error(error: Exception) -> None:
        log.warning("nats.error", error=str(error))

    async def on_disconnect() -> None:
        log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    return await nats.connect(
        url or nats_url(),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )


def stream_definitions(path: Path | None = None) -> list[api.StreamConfig]:
    document = json.loads((path or _STREAMS_FILE).read_text())
    return [_stream_config(entry) for entry in document["streams"]]


def _stream_config(entry: dict[str, Any]) -> api.StreamConfig:
    fields = dict(entry)
    fields["retention"] = api.RetentionPolicy(fields.get("retention", "limits"))
    fields["storage"] = api.StorageType(fields.get("storage", "file"))
    fields["discard"] = api.DiscardPolicy(fields.get("discard", "old"))
    return api.StreamConfig(**fields)


async def ensure_streams(js: JetStreamContext, path: Path | None = None) -> None:
    """Create or update every stream of infra/nats/streams.json; safe to run at every start."""
    for config in stream_definitions(path):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            try:
                await js.add_stream(config)
                log.info("nats.stream_created", stream=config.name)
                continue
            except BadRequestError:
                pass  # another replica created it a moment ago: update it like any other
        await js.update_stream(config)
        log.info("nats.stream_updated", stream=config.name)
