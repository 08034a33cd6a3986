"""The command service's settings (``python -m services.command``), and the demo seed's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.blobs.settings import BlobSettings
from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ApiSettings, RateLimitSettings
from shared.observability.settings import LogSettings, MetricsSettings
from shared.paper.settings import PaperSettings
from shared.privacy.settings import PrivacySettings
from shared.settings import setting
from shared.tenancy.settings import dev_mode_setting


@dataclass(frozen=True)
class CommandSettings:
    host: str = setting("TUTORPULSE_COMMAND_HOST", "127.0.0.1", "the command API's address")
    port: int = setting(
        "TUTORPULSE_COMMAND_PORT", 8010, "the command API's port", minimum=0, maximum=65535
    )
    workers: int = setting("TUTORPULSE_COMMAND_WORKERS", 1, "uvicorn worker processes", minimum=1)
    metrics_dir: Path | None = setting(
        "TUTORPULSE_COMMAND_METRICS_DIR",
        None,
        "with more than one worker, where the workers keep their metrics so that `/metrics` "
        "answers their sum (prometheus-client's multiprocess mode); emptied at start. None: a "
        "new temporary directory, removed at exit",
    )
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    blobs: BlobSettings = field(default_factory=BlobSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    paper: PaperSettings = field(default_factory=PaperSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    logging: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @property
    def multiprocess_metrics_dir(self) -> Path | None:
        """Where ``/metrics`` reads the workers' values from (None: this process's own)."""
        return self.metrics_dir if self.workers > 1 else None


@dataclass(frozen=True)
class SeedSettings:
    """``python -m services.command.seed``: the demo centre, into an empty event store."""

    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    dev_mode: bool = dev_mode_setting()
    """``TUTORPULSE_DEV_MODE`` (declared by the JWT settings): the public development master
    key is accepted, as the command service accepts it (``make run``)."""
    logging: LogSettings = field(default_factory=LogSettings)
