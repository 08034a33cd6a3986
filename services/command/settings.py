"""The command service's settings (``python -m services.command``), and the demo seed's."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.blobs.settings import BlobSettings
from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ApiSettings, RateLimitSettings
from shared.observability.settings import LogSettings
from shared.paper.settings import PaperSettings
from shared.settings import setting


@dataclass(frozen=True)
class CommandSettings:
    host: str = setting("TUTORPULSE_COMMAND_HOST", "127.0.0.1", "the command API's address")
    port: int = setting(
        "TUTORPULSE_COMMAND_PORT", 8010, "the command API's port", minimum=0, maximum=65535
    )
    workers: int = setting("TUTORPULSE_COMMAND_WORKERS", 1, "uvicorn worker processes", minimum=1)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    blobs: BlobSettings = field(default_factory=BlobSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    paper: PaperSettings = field(default_factory=PaperSettings)
    logging: LogSettings = field(default_factory=LogSettings)


@dataclass(frozen=True)
class SeedSettings:
    """``python -m services.command.seed``: the demo centre, into an empty event store."""

    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    logging: LogSettings = field(default_factory=LogSettings)
