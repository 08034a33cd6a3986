"""The live gateway's settings (``python -m services.live_gateway``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.eventstore.settings import EventStoreSettings
from shared.http.settings import ReadinessSettings
from shared.messaging.settings import NatsSettings
from shared.observability.settings import LogSettings, MetricsSettings
from shared.privacy.settings import PrivacySettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import setting
from shared.tenancy.settings import JwtSettings


@dataclass(frozen=True)
class HubSettings:
    """What the gateway keeps per connection, and how often it checks on it."""

    queue: int = setting(
        "TUTORPULSE_GATEWAY_QUEUE",
        64,
        "messages that may wait for one client before it counts as too slow",
        positive=True,
    )
    ping_seconds: float = setting(
        "TUTORPULSE_GATEWAY_PING_SECONDS",
        15.0,
        "seconds between the gateway's pings to a client",
        positive=True,
    )
    resync_seconds: float = setting(
        "TUTORPULSE_GATEWAY_RESYNC_SECONDS",
        5.0,
        "seconds between re-reads of every followed view (a lost notice delays a change at most "
        "this long)",
        positive=True,
    )
    max_topics: int = setting(
        "TUTORPULSE_GATEWAY_MAX_TOPICS", 100, "topics one connection may follow", positive=True
    )
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    def __post_init__(self) -> None:
        if min(self.queue, self.ping_seconds, self.resync_seconds, self.max_topics) <= 0:
            raise ValueError(f"gateway settings must be positive: {self}")


@dataclass(frozen=True)
class WebSettings:
    """The tutor's page the gateway serves at ``/web/`` (``docs/web.md``): where it finds the
    command and query APIs, and where people sign in."""

    command_url: str | None = setting(
        "TUTORPULSE_WEB_COMMAND_URL",
        None,
        "the command API as the tutor's browser reaches it (`scheme://host[:port]`)",
        shown="`http://127.0.0.1:` and `TUTORPULSE_COMMAND_PORT`",
    )
    query_url: str | None = setting(
        "TUTORPULSE_WEB_QUERY_URL",
        None,
        "the query API as the tutor's browser reaches it (`scheme://host[:port]`)",
        shown="`http://127.0.0.1:` and `TUTORPULSE_QUERY_PORT`",
    )
    command_port: int = setting(
        "TUTORPULSE_COMMAND_PORT", 8010, "the command API's port", minimum=0, maximum=65535
    )
    query_port: int = setting(
        "TUTORPULSE_QUERY_PORT", 8014, "the query API's port", minimum=0, maximum=65535
    )
    login_url: str | None = setting(
        "TUTORPULSE_WEB_LOGIN_URL",
        None,
        "the identity provider's sign-in page, shown as a link on the page's sign-in form (in "
        "development mode the form says how to mint a token with `tp-token` instead)",
    )

    def __post_init__(self) -> None:
        for url in (self.command_url, self.query_url, self.login_url):
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"the web page's URLs start with http:// or https://: {url!r}")

    @property
    def command(self) -> str:
        return (self.command_url or f"http://127.0.0.1:{self.command_port}").rstrip("/")

    @property
    def query(self) -> str:
        return (self.query_url or f"http://127.0.0.1:{self.query_port}").rstrip("/")


@dataclass(frozen=True)
class GatewaySettings:
    host: str = setting("TUTORPULSE_GATEWAY_HOST", "127.0.0.1", "the live gateway's address")
    port: int = setting(
        "TUTORPULSE_GATEWAY_PORT", 8013, "the live gateway's port", minimum=0, maximum=65535
    )
    compression: bool = setting(
        "TUTORPULSE_GATEWAY_COMPRESSION",
        False,
        "offer websocket per-message compression (permessage-deflate) to clients: it compresses "
        "every frame for every socket, a few hundred bytes of delta each, for CPU the gateway "
        "needs more than the bandwidth",
    )
    hub: HubSettings = field(default_factory=HubSettings)
    web: WebSettings = field(default_factory=WebSettings)
    read_store: ReadStoreSettings = field(default_factory=ReadStoreSettings)
    event_store: EventStoreSettings = field(default_factory=EventStoreSettings)
    """Where the key store's table is (the event store's database)."""
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    tokens: JwtSettings = field(default_factory=JwtSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    logging: LogSettings = field(default_factory=LogSettings)


@dataclass(frozen=True)
class LiveClientSettings:
    """``python -m services.live_gateway.client``: it follows the gateway that ``make run``
    started, on the same variable."""

    gateway_port: int = setting(
        "TUTORPULSE_GATEWAY_PORT", 8013, "the live gateway's port", minimum=0, maximum=65535
    )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/live"
