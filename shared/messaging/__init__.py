"""NATS connections and JetStream stream definitions (from infra/nats/streams.json)."""

from shared.messaging.nats import (
    NO_USER,
    NoNatsUser,
    connect,
    connect_or_stop,
    ensure_streams,
    nats_url,
    stream_definitions,
    wait_for_streams,
)

__all__ = ["NO_USER", "NoNatsUser", "connect", "connect_or_stop", "ensure_streams", "nats_url",
           "stream_definitions", "wait_for_streams"]
