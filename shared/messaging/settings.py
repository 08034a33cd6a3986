"""NATS settings: the server, this process's NATS user, and what streams are created with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.settings import setting, variable_name

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DAY = 86400.0


@dataclass(frozen=True)
class Credentials:
    """A NATS user and its password."""

    user: str
    password: str

    def __repr__(self) -> str:  # never print a password into a log
        return f"Credentials(user={self.user!r}, password='***')"


def parse_duration(text: str) -> float:
    """Seconds from ``3600``, ``90s``, ``15m``, ``12h`` or ``30d``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (a number of seconds, or with s, m, h, d)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``512M``, ``8GB`` or ``-1`` (unlimited); K/M/G/T are 1024-based."""
    if text.strip() == "-1":
        return -1
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (bytes, or with K, M, G, T; -1 is unlimited)")
    return int(match.group(1)) * int(1024 ** " KMGT".index(match.group(2).upper() or " "))


@dataclass(frozen=True)
class NatsSettings:
    url: str = setting("TUTORPULSE_NATS_URL", "nats://127.0.0.1:4222", "the NATS server(s)")
    user: str | None = setting(
        "TUTORPULSE_NATS_USER",
        None,
        "this process's NATS user (`relay`, `projections`, `gateway`, `scheduler`, `ops`, …); "
        "a service without one does not connect and its `/ready` is 503 `no NATS user "
        "configured`",
    )
    password: str = setting("TUTORPULSE_NATS_PASSWORD", "", "that user's password", secret=True)

    @property
    def credentials(self) -> Credentials | None:
        """This process's NATS user, or None when none is set."""
        return None if self.user is None else Credentials(self.user, self.password)

    @property
    def servers(self) -> list[str]:
        """The URLs of :attr:`url` (:func:`server_urls`)."""
        return server_urls(self.url)


def server_urls(url: str) -> list[str]:
    """One URL, or a cluster's several comma-separated (``nats://a:4222,nats://b:4222``): the
    client starts with whichever answers and fails over to the others (and to the servers the
    cluster tells it of)."""
    return [part.strip() for part in url.split(",") if part.strip()]


@dataclass(frozen=True)
class StreamSettings:
    """What a stream is created with (only the relay creates streams)."""

    replicas: int = setting(
        "TUTORPULSE_NATS_REPLICAS",
        1,
        "replicas of a stream when it is created, or raised to (3 in `infra/k8s`)",
        minimum=1,
        maximum=5,
    )
    events_max_age: float = setting(
        "TUTORPULSE_NATS_EVENTS_MAX_AGE",
        30 * DAY,
        "`TP_EVENTS`'s maximum age at creation (`90s`, `15m`, `12h`, `30d`)",
        parse=parse_duration,
        shown="`30d`",
    )
    events_max_bytes: int = setting(
        "TUTORPULSE_NATS_EVENTS_MAX_BYTES",
        -1,
        "`TP_EVENTS`'s maximum size at creation (`512M`, `50G`; -1: unlimited)",
        parse=parse_size,
    )
    dlq_max_age: float = setting(
        "TUTORPULSE_NATS_DLQ_MAX_AGE",
        14 * DAY,
        "`TP_DLQ`'s maximum age at creation",
        parse=parse_duration,
        shown="`14d`",
    )
    dlq_max_bytes: int = setting(
        "TUTORPULSE_NATS_DLQ_MAX_BYTES",
        -1,
        "`TP_DLQ`'s maximum size at creation (-1: unlimited)",
        parse=parse_size,
    )


def credentials_env(credentials: Credentials) -> dict[str, str]:
    """The environment that makes a tutorpulse process log in to NATS as ``credentials``."""
    return {
        variable_name(NatsSettings, "user"): credentials.user,
        variable_name(NatsSettings, "password"): credentials.password,
    }


def server_password_variable(user: str) -> str:
    """The variable a deployed nats-server reads ``user``'s password from (in
    ``infra/nats/users.conf``; tutorpulse itself never reads it)."""
    return f"TUTORPULSE_NATS_{user.upper()}_PASSWORD"


@dataclass(frozen=True)
class TailSettings:
    nats: NatsSettings = field(default_factory=NatsSettings)
    make_run_nats_port: int = setting(
        "TUTORPULSE_NATS_PORT",
        4222,
        "the port `make run` starts nats-server on",
        minimum=1,
        maximum=65535,
    )

    @property
    def url(self) -> str:
        """``TUTORPULSE_NATS_URL`` when it was given, else ``make run``'s nats-server."""
        if self.nats.url != NatsSettings.url:
            return self.nats.url
        return f"nats://127.0.0.1:{self.make_run_nats_port}"
