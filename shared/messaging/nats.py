"""NATS connections (with each service's own credentials) and JetStream stream set-up.

A service connects with its :class:`NatsSettings` (``TUTORPULSE_NATS_URL``, and its own user in
``TUTORPULSE_NATS_USER`` / ``TUTORPULSE_NATS_PASSWORD``, see ``shared.messaging.auth``); every
service needs a user (without, it does not connect and is not ready: :class:`NoNatsUser`), and
only operators' CLIs without one use the ``ops`` credentials that ``make run`` wrote into
``var/nats/credentials/`` (``connect(operator_fallback=True)``). Streams are created with the
limits of :class:`StreamSettings` (``TUTORPULSE_NATS_REPLICAS``, ``…_MAX_AGE``,
``…_MAX_BYTES``; every variable is in docs/settings.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from nats.aio.client import Client
from nats.errors import AuthorizationError, SlowConsumerError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from shared.messaging.auth import (
    DLQ_STREAM,
    EVENTS_STREAM,
    NOTIFY_STREAM,
    OPS,
    TIMERS_STREAM,
    inbox_prefix,
    read_credentials_file,
)
from shared.messaging.settings import Credentials, NatsSettings, StreamSettings, server_urls
from shared.observability.outage import OutageLog

log = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parents[2]
_STREAMS_FILE = ROOT / "infra" / "nats" / "streams.json"
LOCAL_CREDENTIALS = ROOT / "var" / "nats" / "credentials"
"""Where ``make run`` leaves each user's credentials (``<user>.json``) for this run."""


NO_USER = "no NATS user configured"
"""Why a service without a NATS user is not ready (see :class:`NoNatsUser`)."""


class NoNatsUser(RuntimeError):
    """This process has no NATS user. Services are given their own (``TUTORPULSE_NATS_USER``,
    ``TUTORPULSE_NATS_PASSWORD``; ``make run`` does it); only operators' CLIs fall back to the
    ``ops`` credentials of a development checkout."""


def resolve_credentials(
    url: str,
    credentials: Credentials | None = None,
    configured: Credentials | None = None,
    *,
    operator_fallback: bool = False,
) -> Credentials | None:
    """Who to log in as: ``credentials`` if given, else the user in ``url``
    (``nats://user:password@host:port``), else the ``configured`` user of the settings
    (``TUTORPULSE_NATS_USER``/``_PASSWORD``), else, for an operator's CLI
    (``operator_fallback``), the ``ops`` credentials ``make run`` wrote for this checkout;
    else nobody."""
    if credentials is not None:
        return credentials
    parts = urlsplit(url)
    if parts.username:
        return Credentials(unquote(parts.username), unquote(parts.password or ""))
    if configured is not None:
        return configured
    local = LOCAL_CREDENTIALS / f"{OPS}.json"
    if operator_fallback and local.is_file():
        log.info("nats.local_operator_credentials", path=str(local))
        return read_credentials_file(local)
    return None


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


class ConnectionLog:
    """What one client says about its connection, in few lines: ``nats.waiting`` once while the
    first connect keeps failing (and ``nats.connected`` when it succeeds), then an outage as two
    lines (``nats.unavailable`` / ``nats.recovered``, :class:`OutageLog`) however many
    reconnect attempts fail (nats-py reports every one, every ``reconnect_time_wait``);
    ``nats.disconnected`` / ``nats.reconnected`` at info; refused credentials once a minute."""

    REFUSED_EVERY = 60.0

    def __init__(self, name: str, url: str, user: str) -> None:
        self.name, self.url, self.user = name, url, user
        self.outage = OutageLog("nats", name=name)
        self.connected = False
        self._waiting_since: float | None = None
        self._attempts = 0
        self._refused_at = float("-inf")

    async def on_error(self, error: Exception) -> None:
        text = str(error).lower()
        if isinstance(error, AuthorizationError) or "authorization violation" in text:
            # Wrong or missing credentials: retried (a password may be rotated on the server
            # first), told once a minute rather than at every attempt.
            if time.monotonic() - self._refused_at >= self.REFUSED_EVERY:
                self._refused_at = time.monotonic()
                log.error(
                    "nats.authorization_refused",
                    name=self.name,
                    user=self.user,
                    hint="check TUTORPULSE_NATS_USER and TUTORPULSE_NATS_PASSWORD",
                )
            return
        if "permissions violation" in text or isinstance(error, SlowConsumerError):
            log.warning("nats.error", name=self.name, error=_describe(error))  # each is news
            return
        if not self.connected:
            self._attempts += 1
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
                log.warning(
                    "nats.waiting",
                    name=self.name,
                    url=self.url,
                    user=self.user,
                    reason=_describe(error),
                )
            return
        self.outage.failed(_describe(error))

    async def on_disconnect(self) -> None:
        log.info("nats.disconnected", name=self.name)

    async def on_reconnect(self) -> None:
        log.info("nats.reconnected", name=self.name)
        self.outage.succeeded()

    def on_connect(self) -> None:
        self.connected = True
        if self._waiting_since is not None:
            log.info(
                "nats.connected",
                name=self.name,
                url=self.url,
                attempts=self._attempts + 1,
                after_seconds=round(time.monotonic() - self._waiting_since, 3),
            )


async def connect(
    server: str | NatsSettings,
    *,
    name: str,
    credentials: Credentials | None = None,
    operator_fallback: bool = False,
) -> Client:
    """A client of ``server`` (a URL, or the settings' URL and user) that reconnects for ever,
    logged in as this process's NATS user (:func:`resolve_credentials`), receiving replies only
    on that user's inbox prefix.

    It waits as long as NATS is away (see :func:`connect_or_stop` to give up on a signal).
    Without a user it raises :class:`NoNatsUser` (logged); ``operator_fallback`` lets an
    operator's CLI on a development checkout use the ``ops`` credentials of ``make run``."""
    return await _open(
        Client(), server, name=name, credentials=credentials, operator_fallback=operator_fallback
    )


async def connect_or_stop(
    stopping: asyncio.Event,
    server: str | NatsSettings,
    *,
    name: str,
    credentials: Credentials | None = None,
) -> Client | None:
    """:func:`connect`, given up (None) as soon as ``stopping`` is set: nats-py's first connect
    waits for ever while NATS is away, and a service must still stop on SIGTERM."""
    client = Client()
    connecting = asyncio.ensure_future(_open(client, server, name=name, credentials=credentials))
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({connecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if connecting.done():
        return connecting.result()
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    await client.close()  # whatever the unfinished connect had started
    log.info("nats.connect_abandoned", name=name)
    return None


async def _open(
    client: Client,
    server: str | NatsSettings,
    *,
    name: str,
    credentials: Credentials | None,
    operator_fallback: bool = False,
) -> Client:
    url, configured = (
        (server, None) if isinstance(server, str) else (server.url, server.credentials)
    )
    urls = server_urls(url) or [url]
    servers = [_without_userinfo(each) for each in urls]
    address = ",".join(servers)
    who = resolve_credentials(urls[0], credentials, configured, operator_fallback=operator_fallback)
    if who is None:
        log.error(
            "nats.no_user",
            name=name,
            url=address,
            hint="set TUTORPULSE_NATS_USER and TUTORPULSE_NATS_PASSWORD (each service has "
            "its own user; `make run` sets them)",
        )
        raise NoNatsUser(f"{NO_USER}: set TUTORPULSE_NATS_USER and TUTORPULSE_NATS_PASSWORD")
    connection = ConnectionLog(name, address, who.user)
    try:
        await client.connect(
            servers,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # annotated int, sleeps any number
            error_cb=connection.on_error,
            disconnected_cb=connection.on_disconnect,
            reconnected_cb=connection.on_reconnect,
            user=who.user,
            password=who.password,
            inbox_prefix=inbox_prefix(who.user),
        )
    except Exception as error:
        log.error(
            "nats.connect_failed", url=address, name=name, user=who.user, error=_describe(error)
        )
        raise
    connection.on_connect()
    return client


async def wait_for_streams(
    js: JetStreamContext,
    stopping: asyncio.Event,
    *,
    names: tuple[str, ...] = (EVENTS_STREAM, DLQ_STREAM),
    poll_seconds: float = 0.5,
) -> bool:
    """Wait until every stream of ``names`` exists (the relay creates them: other users may
    only read their info). Logs ``nats.waiting_for_streams`` once if they are missing, and
    ``nats.streams_found`` when they appear. False if ``stopping`` is set first."""
    missing: list[str] = []
    logged = False
    while not stopping.is_set():
        missing = []
        for stream in names:
            try:
                await js.stream_info(stream)
            except NotFoundError:
                missing.append(stream)
            except (NatsError, TimeoutError) as error:  # NATS away: wait, as for missing
                missing.append(stream)
                log.debug("nats.stream_info_failed", stream=stream, error=_describe(error))
        if not missing:
            if logged:
                log.info("nats.streams_found", streams=list(names))
            return True
        if not logged:
            logged = True
            log.warning(
                "nats.waiting_for_streams",
                missing=missing,
                hint="the relay creates them when it starts",
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), poll_seconds)
    return False


# --- streams -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamLimits:
    """What a stream is created with; an existing stream keeps what an operator gave it."""

    replicas: int = 1
    max_age: float | None = None
    max_bytes: int | None = None


def stream_limits(settings: StreamSettings) -> dict[str, StreamLimits]:
    return {
        EVENTS_STREAM: StreamLimits(
            settings.replicas, settings.events_max_age, settings.events_max_bytes
        ),
        DLQ_STREAM: StreamLimits(settings.replicas, settings.dlq_max_age, settings.dlq_max_bytes),
        # Timers are due days or weeks ahead: no maximum age, or a schedule would expire unfired.
        TIMERS_STREAM: StreamLimits(settings.replicas),
        # Deliveries wait at most their retries (minutes to hours): a work queue, no age limit.
        NOTIFY_STREAM: StreamLimits(settings.replicas),
    }


def stream_definitions(
    path: Path | None = None, settings: StreamSettings | None = None
) -> list[api.StreamConfig]:
    """The streams of ``infra/nats/streams.json`` with the limits of the settings (the
    defaults when None)."""
    document = json.loads((path or _STREAMS_FILE).read_text())
    limits = stream_limits(StreamSettings() if settings is None else settings)
    return [_stream_config(entry, limits.get(entry["name"])) for entry in document["streams"]]


def _stream_config(entry: dict[str, Any], limits: StreamLimits | None) -> api.StreamConfig:
    fields = dict(entry)
    fields["retention"] = api.RetentionPolicy(fields.get("retention", "limits"))
    fields["storage"] = api.StorageType(fields.get("storage", "file"))
    fields["discard"] = api.DiscardPolicy(fields.get("discard", "old"))
    if limits is not None:
        fields["num_replicas"] = limits.replicas
        if limits.max_age is not None:
            fields["max_age"] = limits.max_age
        if limits.max_bytes is not None:
            fields["max_bytes"] = limits.max_bytes
    return api.StreamConfig(**fields)


def reconcile(existing: api.StreamConfig, wanted: api.StreamConfig) -> api.StreamConfig | None:
    """The update an existing stream needs, or None: only replicas below the setting are raised.
    Everything an operator set (replicas above the setting, subjects, age, size and count
    limits, the duplicate window…) is kept."""
    if (existing.num_replicas or 1) >= (wanted.num_replicas or 1):
        return None
    return existing.evolve(num_replicas=wanted.num_replicas)


def _differences(existing: api.StreamConfig, wanted: api.StreamConfig) -> dict[str, Any]:
    return {
        name: {"stream": getattr(existing, name), "settings": getattr(wanted, name)}
        for name in ("num_replicas", "max_age", "max_bytes", "duplicate_window")
        if getattr(wanted, name) is not None and getattr(existing, name) != getattr(wanted, name)
    }


async def ensure_streams(
    js: JetStreamContext, settings: StreamSettings | None = None, *, path: Path | None = None
) -> None:
    """Create every stream of infra/nats/streams.json that is missing, with the limits of
    ``settings`` (the defaults when None); of an existing one, only raise its replicas to the
    setting (never lower them, never change a limit an operator set). Safe to run at every
    start of every replica."""
    for wanted in stream_definitions(path, settings):
        name = wanted.name or ""
        try:
            existing = (await js.stream_info(name)).config
        except NotFoundError:
            try:
                await js.add_stream(wanted)
                log.info("nats.stream_created", stream=name, replicas=wanted.num_replicas)
                continue
            except BadRequestError:  # another replica created it a moment ago
                existing = (await js.stream_info(name)).config
        update = reconcile(existing, wanted)
        if update is not None:
            await js.update_stream(update)
            log.info("nats.stream_replicas_raised", stream=name, replicas=update.num_replicas)
        elif differences := _differences(existing, wanted):
            log.info("nats.stream_kept", stream=name, differences=differences)
