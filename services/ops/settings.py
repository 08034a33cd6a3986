"""``python -m services.ops``' settings: the event store, and NATS as the operators' user."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.eventstore.settings import EventStoreSettings
from shared.messaging.settings import NatsSettings
from shared.observability.settings import LogSettings


@dataclass(frozen=True)
class OpsSettings:
    """The event store it backs up or repairs after a restore, and NATS (``TP_EVENTS``' tail)."""

    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    logging: LogSettings = field(default_factory=LogSettings)
