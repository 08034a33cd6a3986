"""Per-caller rate limits (Litestar's rate-limit middleware, keyed by who the token names).

A caller is the token's centre and subject (``<centre>/<user id>``); a request without a valid
token is counted by its client address. A limit is ``<count>/<second|minute|hour|day>`` (a
fixed window) or ``off``. Over the limit, the answer is a 429 problem with ``Retry-After``
(seconds until the window ends) and the ``RateLimit-*`` headers.

Counters live in the process (Litestar's memory store): with N processes or pods behind a
load balancer a caller gets up to N times the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import DurationUnit, RateLimitConfig, get_remote_address

from shared.http.auth import token_actor
from shared.http.settings import Limit
from shared.tenancy.tokens import InvalidToken

EXCLUDED = ["^/health", "^/ready", "^/metrics", "^/schema"]
"""Probes, metrics and the API description are never limited."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests per ``per`` for each caller, of the requests ``applies`` to
    (every request when None)."""

    name: str
    count: int
    per: DurationUnit
    applies: Callable[[Request[Any, Any, Any]], bool] | None = None

    def config(self) -> RateLimitConfig:
        name = self.name

        applies = self.applies

        def identify(request: Request[Any, Any, Any]) -> str:
            return f"{name}:{caller(request)}"

        async def check(request: Request[Any, Any, Any]) -> bool:
            # Async although it never waits: Litestar runs a plain function here in a worker
            # thread, a thread hop per request for a check of microseconds.
            return applies is None or applies(request)

        return RateLimitConfig(
            rate_limit=(self.per, self.count),
            exclude=EXCLUDED,
            identifier_for_request=identify,
            check_throttle_handler=None if applies is None else check,
        )

    @property
    def middleware(self) -> DefineMiddleware:
        return self.config().middleware


def limit_of(
    name: str, limit: Limit, applies: Callable[[Request[Any, Any, Any]], bool] | None = None
) -> list[RateLimit]:
    """The rate limit ``name`` for a limit setting (none when it is ``off``)."""
    if limit is None:
        return []
    return [RateLimit(name, limit[0], limit[1], applies)]


def caller(request: Request[Any, Any, Any]) -> str:
    """``<centre>/<user id>`` of a valid bearer token (the token's own centre, whichever centre a
    SUPER_ADMIN acts in), else ``address/<client address>``."""
    try:
        actor = token_actor(request)
    except InvalidToken:
        return f"address/{get_remote_address(request)}"
    return f"{actor.centre_id}/{actor.user_id}"


def retry_after(error: TooManyRequestsException) -> str:
    """Whole seconds until the caller's window ends (at least 1)."""
    reset = (error.headers or {}).get(RateLimitConfig.rate_limit_reset_header_key, "1")
    try:
        return str(max(1, int(reset)))
    except ValueError:
        return "1"
