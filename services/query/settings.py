"""The query API's settings (``python -m services.query``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.blobs.settings import BlobSettings
from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ApiSettings
from shared.observability.settings import LogSettings
from shared.paper.settings import PaperSettings
from shared.privacy.settings import PrivacySettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import setting


@dataclass(frozen=True)
class FreshnessSettings:
    """When ``/ready`` calls the read models stale (``services.query.freshness``)."""

    max_lag_events: int = setting(
        "TUTORPULSE_QUERY_MAX_LAG_EVENTS",
        1000,
        "events the read models may stay behind the event store's head (for the grace below) "
        "before `/ready` is 503",
        minimum=1,
    )
    grace_seconds: float = setting(
        "TUTORPULSE_QUERY_LAG_GRACE_SECONDS",
        10.0,
        "seconds the read models may be too far behind, or not move while behind, before "
        "`/ready` is 503",
        minimum=0,
    )

    def __post_init__(self) -> None:
        if self.max_lag_events < 1 or self.grace_seconds < 0:
            raise ValueError(
                f"freshness: max_lag_events must be at least 1 and grace_seconds "
                f"not negative: {self}"
            )


@dataclass(frozen=True)
class QuerySettings:
    host: str = setting("TUTORPULSE_QUERY_HOST", "127.0.0.1", "the query API's address")
    port: int = setting(
        "TUTORPULSE_QUERY_PORT", 8014, "the query API's port", minimum=0, maximum=65535
    )
    wait_seconds: float = setting(
        "TUTORPULSE_QUERY_WAIT_SECONDS",
        2.0,
        "the longest a query given a position waits for the read models to reach it (then 503)",
        minimum=0,
    )
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    """For ``/ready``'s reading of the event store's head, the subject-access export's reading
    of its log, and the key store (a table in the event store's database)."""
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    """The key store that opens the sealed texts of every answer."""
    blobs: BlobSettings = field(default_factory=BlobSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    paper: PaperSettings = field(default_factory=PaperSettings)
    logging: LogSettings = field(default_factory=LogSettings)
