"""Settings every HTTP service shares: readiness probes and per-caller rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from litestar.middleware.rate_limit import DURATION_VALUES, DurationUnit

from shared.http.cors.settings import CorsSettings
from shared.settings import setting
from shared.tenancy.settings import JwtSettings

Limit = tuple[int, DurationUnit] | None
"""``(count, unit)``; None is no limit."""


def parse_limit(text: str) -> Limit:
    """``"600/minute"`` → ``(600, "minute")``; ``"off"`` → None."""
    value = text.strip().lower()
    if value == "off":
        return None
    count, _, unit = value.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or unit.strip() not in DURATION_VALUES:
        raise ValueError(f"write <count>/<second|minute|hour|day> or off, not {text!r}")
    return int(count), cast(DurationUnit, unit.strip())


@dataclass(frozen=True)
class ReadinessSettings:
    timeout_seconds: float = setting(
        "TUTORPULSE_READY_TIMEOUT_SECONDS",
        0.8,
        "the longest `/ready` waits for the service's check (one check at a time)",
        positive=True,
    )


@dataclass(frozen=True)
class RateLimitSettings:
    requests: Limit = setting(
        "TUTORPULSE_RATE_LIMIT",
        (600, "minute"),
        "requests per caller (`<count>/<second|minute|hour|day>` or `off`)",
        parse=parse_limit,
        shown="`600/minute`",
    )
    help_requests: Limit = setting(
        "TUTORPULSE_HELP_RATE_LIMIT",
        (5, "minute"),
        "help requests raised per caller",
        parse=parse_limit,
        shown="`5/minute`",
    )


@dataclass(frozen=True)
class ApiSettings:
    """What every HTTP API needs: who may call it, and how its probe waits."""

    tokens: JwtSettings = field(default_factory=JwtSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    cors: CorsSettings = field(default_factory=CorsSettings)
