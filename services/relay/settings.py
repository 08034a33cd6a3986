"""The relay's settings (``python -m services.relay``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ReadinessSettings
from shared.messaging.settings import NatsSettings, StreamSettings
from shared.observability.settings import LogSettings
from shared.settings import setting


@dataclass(frozen=True)
class RelaySettings:
    """How the relay publishes (the fields without a variable are fixed tuning)."""

    batch_size: int = setting(
        "TUTORPULSE_RELAY_BATCH_SIZE",
        500,
        "events read from the store and published per batch",
        positive=True,
    )
    ack_timeout: float = setting(
        "TUTORPULSE_RELAY_ACK_TIMEOUT_SECONDS",
        5.0,
        "the longest the relay waits for a batch's acks (and for room to publish) before it "
        "publishes the batch again",
        positive=True,
    )
    stall_seconds: float = setting(
        "TUTORPULSE_RELAY_STALL_SECONDS",
        10.0,
        "events waiting and no batch through for this long: the relay is not ready",
        positive=True,
    )
    handover_seconds: float = setting(
        "TUTORPULSE_RELAY_HANDOVER_SECONDS",
        30.0,
        "a leader that could not publish for this long while events wait gives up the lease "
        "(0: never)",
        minimum=0,
    )
    store_timeout: float = setting(
        "TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS",
        3.0,
        "the longest the relay waits for PostgreSQL to answer a read, a record of its position "
        "or a check of its lease: a frozen server makes the relay unready after this long, and "
        "it lets the lease go",
        positive=True,
    )
    idle_poll_seconds: float = 0.005
    max_idle_poll_seconds: float = 0.05
    listening_poll_seconds: float = 1.0
    """How often the relay reads the log anyway while the store's notifications wake it (a
    lost notification is found this late at worst)."""
    lease_retry_seconds: float = 1.0
    lease_confirm_seconds: float = 2.0
    retry_seconds: float = 0.1
    max_retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        if (
            self.batch_size <= 0
            or min(self.ack_timeout, self.stall_seconds, self.store_timeout) <= 0
        ):
            raise ValueError(f"relay settings must be positive: {self}")
        if self.handover_seconds < 0:
            raise ValueError(
                f"relay settings: handover_seconds must be 0 (never) or positive: {self}"
            )


@dataclass(frozen=True)
class RelayServiceSettings:
    host: str = setting(
        "TUTORPULSE_RELAY_HOST",
        "127.0.0.1",
        "the relay's address for `/health`, `/ready` and `/metrics`",
    )
    port: int = setting("TUTORPULSE_RELAY_PORT", 8011, "the relay's port", minimum=0, maximum=65535)
    relay: RelaySettings = field(default_factory=RelaySettings)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    logging: LogSettings = field(default_factory=LogSettings)
