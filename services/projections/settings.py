"""The projection service's settings (``python -m services.projections``), and those of its
operators' commands: the rebuild and the dead-letters CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.blobs.settings import BlobSettings
from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ReadinessSettings
from shared.messaging.settings import NatsSettings
from shared.observability.settings import LogSettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import setting


@dataclass(frozen=True)
class ProjectionSettings:
    """How a replica consumes (the fields without a variable are fixed tuning)."""

    batch_size: int = setting(
        "TUTORPULSE_PROJECTION_BATCH",
        200,
        "messages fetched and applied per transaction",
        positive=True,
    )
    poison_after: int = setting(
        "TUTORPULSE_PROJECTION_POISON_AFTER",
        5,
        "handler failures of an event (counted by the replica) before it is dead-lettered",
        positive=True,
    )
    wait_deliveries: int = setting(
        "TUTORPULSE_PROJECTION_WAIT_DELIVERIES",
        150,
        "times a replica refuses an event because an earlier one is missing before it is "
        "dead-lettered",
        positive=True,
    )
    conflict_retries: int = setting(
        "TUTORPULSE_PROJECTION_CONFLICT_RETRIES",
        20,
        "times an event is tried again at once after a transient conflict (deadlock, statement "
        "timeout) before each further one counts as a handler failure",
        positive=True,
    )
    ack_wait: float = setting(
        "TUTORPULSE_PROJECTION_ACK_WAIT",
        1.0,
        "seconds before JetStream hands a replica's unacknowledged messages to another",
        positive=True,
    )
    retry_delay: float = 0.05
    max_backoff: float = 30.0
    outage_backoff: float = 5.0
    """The longest pause between attempts while NATS or the read store is unreachable."""
    dead_letter_refresh: float = 5.0
    remembered_messages: int = 100_000
    """Messages whose failures and waits a replica counts at most (the oldest are forgotten)."""


@dataclass(frozen=True)
class ProjectionServiceSettings:
    host: str = setting(
        "TUTORPULSE_PROJECTIONS_HOST",
        "127.0.0.1",
        "the projection service's address for `/health`, `/ready`, `/metrics`",
    )
    port: int = setting(
        "TUTORPULSE_PROJECTIONS_PORT",
        8012,
        "the projection service's port",
        minimum=0,
        maximum=65535,
    )
    projection: ProjectionSettings = field(default_factory=ProjectionSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    blobs: BlobSettings = field(default_factory=BlobSettings)
    """Where a person's erasure deletes their uploads from."""


@dataclass(frozen=True)
class RebuildSettings:
    """``python -m services.projections.rebuild``: from the event store into the read store."""

    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    logging: LogSettings = field(default_factory=LogSettings)


@dataclass(frozen=True)
class DeadLetterSettings:
    """``python -m services.projections.dead_letters``: NATS as an operator, and the read store."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    logging: LogSettings = field(default_factory=LogSettings)
