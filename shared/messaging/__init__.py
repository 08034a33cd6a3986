"""NATS connections and JetStream stream definitions (from infra/nats/streams.json)."""

from shared.messaging.nats import (
    NO_USER,
    NoNatsUser,
    connect,
    connect_or_stop,
    ensure_streams,
    stream_definitions,
    wait_for_streams,
)
from shared.messaging.settings import NatsSettings, StreamSettings

__all__ = [
    "NO_USER",
    "NatsSettings",
    "NoNatsUser",
    "StreamSettings",
    "connect",
    "connect_or_stop",
    "ensure_streams",
    "stream_definitions",
    "wait_for_streams",
]
