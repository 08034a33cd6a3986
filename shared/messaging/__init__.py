"""NATS connections and JetStream stream definitions (from infra/nats/streams.json)."""

from shared.messaging.nats import connect, ensure_streams, nats_url, stream_definitions

__all__ = ["connect", "ensure_streams", "nats_url", "stream_definitions"]
