"""``python -m services.migrate``'s settings: the stores whose tables it creates, the role it
grants the services' rights to, NATS for the streams, and the key store's master keys for
``privacy`` (sealing the events written before sealing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.eventstore.settings import EventStoreSettings
from shared.messaging.settings import NatsSettings, StreamSettings
from shared.observability.settings import LogSettings
from shared.privacy.settings import PrivacySettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import setting
from shared.tenancy.settings import dev_mode_setting


@dataclass(frozen=True)
class MigrateSettings:
    """The event store and the read store (tables), and NATS as the relay's user (streams)."""

    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    grant_to: str | None = setting(
        "TUTORPULSE_MIGRATE_GRANT_TO",
        None,
        "a PostgreSQL role given the services' rights (read and write rows, no DDL) on every "
        "table `python -m services.migrate` made, and on tables its role makes later (a "
        "rebuild's generations); none: no grants",
    )
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    dev_mode: bool = dev_mode_setting()
    """``TUTORPULSE_DEV_MODE`` (declared by the JWT settings): the public development master
    key is accepted for ``privacy``, as the services accept it."""
