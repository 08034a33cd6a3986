"""The notifier's settings (``python -m services.notifier``) and its ``redeliver`` CLI's."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ReadinessSettings
from shared.messaging.settings import NatsSettings
from shared.observability.settings import LogSettings
from shared.privacy.settings import PrivacySettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import SettingsError, setting
from shared.tenancy.settings import dev_mode_setting


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are tried and retried."""

    attempts: int = setting(
        "TUTORPULSE_NOTIFIER_ATTEMPTS",
        8,
        "tries of one webhook call or e-mail before it is dead-lettered",
        positive=True,
    )
    retry_seconds: float = setting(
        "TUTORPULSE_NOTIFIER_RETRY_SECONDS",
        5.0,
        "the wait before the second try; each later wait doubles (JetStream redelivers)",
        positive=True,
    )
    max_retry_seconds: float = setting(
        "TUTORPULSE_NOTIFIER_MAX_RETRY_SECONDS",
        1800.0,
        "the longest wait between two tries",
        positive=True,
    )
    timeout: float = setting(
        "TUTORPULSE_NOTIFIER_TIMEOUT",
        10.0,
        "seconds a webhook receiver or the SMTP server has to answer one try",
        positive=True,
    )
    private_webhooks: bool = setting(
        "TUTORPULSE_NOTIFIER_PRIVATE_WEBHOOKS",
        False,
        "call webhook URLs whose host is a private, loopback or link-local address (an on-site "
        "receiver, tests); otherwise such a call fails like a refused one",
    )
    smtp_host: str = setting(
        "TUTORPULSE_SMTP_HOST", "127.0.0.1", "the SMTP server e-mail notifications go through"
    )
    smtp_port: int = setting("TUTORPULSE_SMTP_PORT", 25, "its port", minimum=1, maximum=65535)
    smtp_user: str | None = setting(
        "TUTORPULSE_SMTP_USER", None, "the SMTP login (none: send without logging in)"
    )
    smtp_password: str = setting("TUTORPULSE_SMTP_PASSWORD", "", "the SMTP password", secret=True)
    smtp_tls: bool = setting(
        "TUTORPULSE_SMTP_STARTTLS", False, "upgrade the SMTP connection with STARTTLS"
    )
    mail_from: str = setting(
        "TUTORPULSE_NOTIFIER_MAIL_FROM",
        "tutorpulse <notifications@tutorpulse.invalid>",
        "the From of e-mail notifications",
    )
    ack_wait: float = setting(
        "TUTORPULSE_NOTIFIER_ACK_WAIT",
        60.0,
        "seconds a replica may hold a delivery unanswered before JetStream hands it to another "
        "(after a kill -9); longer than `TUTORPULSE_NOTIFIER_TIMEOUT`",
        positive=True,
    )
    batch: int = 50
    """Messages fetched at once from each consumer."""

    def __post_init__(self) -> None:
        if self.ack_wait <= self.timeout:
            raise SettingsError(
                f"TUTORPULSE_NOTIFIER_ACK_WAIT ({self.ack_wait:g} s) must be longer than "
                f"TUTORPULSE_NOTIFIER_TIMEOUT ({self.timeout:g} s): a try still waiting for its "
                "answer would be handed to another replica and delivered twice"
            )


@dataclass(frozen=True)
class NotifierServiceSettings:
    host: str = setting(
        "TUTORPULSE_NOTIFIER_HOST",
        "127.0.0.1",
        "the notifier's address for `/health`, `/ready`, `/metrics`",
    )
    port: int = setting(
        "TUTORPULSE_NOTIFIER_PORT", 8016, "the notifier's port", minimum=0, maximum=65535
    )
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    """Where the key store's table is (the event store's database)."""
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    """The key store that opens each delivery's sealed texts as it is sent."""
    dev_mode: bool = dev_mode_setting()
    """``TUTORPULSE_DEV_MODE`` (declared by the JWT settings): the public development master
    key is accepted, as the other services accept it."""
    nats: NatsSettings = field(default_factory=NatsSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    logging: LogSettings = field(default_factory=LogSettings)


@dataclass(frozen=True)
class RedeliverSettings:
    """``python -m services.notifier.redeliver``: NATS as the notifier's user."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    logging: LogSettings = field(default_factory=LogSettings)
