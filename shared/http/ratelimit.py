"""Per-caller rate limits (Litestar's rate-limit middleware, keyed by who the token names).

A caller is the token's centre and subject (``<centre>/<user id>``); a request without a valid
token is counted by its client address. A limit is ``<count>/<second|minute|hour|day>`` (a
fixed window) or ``off``. Over the limit, the answer is a 429 problem with ``Retry-After``
(seconds until the window ends) and the ``RateLimit-*`` headers.

Counters live in the process (Litestar's memory store): with N processes or pods behind a
load balancer a caller gets up to N times the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.types import Message, Receive, Scope, Send

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
            middleware_class=CountingRateLimitMiddleware,
        )

    @property
    def middleware(self) -> DefineMiddleware:
        return self.config().middleware


class CountingRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's fixed window (it starts with a caller's first request and lasts the limit's
    unit; the same answers and headers), counted in a plain dict of the application. Litestar's
    own keeps the time of every request of the window in its store, JSON-encoded, and reads and
    writes it under a lock on each request: 600 numbers for a caller near ``600/minute``."""

    WINDOWS = "tutorpulse.rate_limit_windows"
    """Where the application's state keeps, per key, requests so far and when the window ends
    (one dict for the middleware of every route)."""
    SWEEP_AT = 10_000
    """Keys kept before the windows that ended are forgotten."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request: Request[Any, Any, Any] = Request(scope)
        if self.check_throttle_handler is None or await self.check_throttle_handler(request):
            windows: dict[str, tuple[int, int]] = scope["litestar_app"].state.setdefault(
                self.WINDOWS, {}
            )
            key = self.cache_key_from_request(request)
            now = int(time.time())
            count, reset = windows.get(key, (0, 0))
            if reset <= now:
                count, reset = 0, now + DURATION_VALUES[self.unit]
            if count >= self.max_requests:
                raise TooManyRequestsException(headers=self._headers(count, reset))
            if len(windows) >= self.SWEEP_AT and key not in windows:
                for ended in [k for k, (_, ends) in windows.items() if ends <= now]:
                    del windows[ended]
            count += 1
            windows[key] = (count, reset)
            send = self._with_headers(send, self._headers(count, reset))
        await self.app(scope, receive, send)

    def _headers(self, count: int, reset: int) -> dict[str, str]:
        config = self.config
        return {
            config.rate_limit_policy_header_key: (
                f"{self.max_requests}; w={DURATION_VALUES[self.unit]}"
            ),
            config.rate_limit_limit_header_key: str(self.max_requests),
            config.rate_limit_remaining_header_key: str(max(0, self.max_requests - count)),
            config.rate_limit_reset_header_key: str(reset - int(time.time())),
        }

    @staticmethod
    def _with_headers(send: Send, headers: dict[str, str]) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                response_headers = MutableScopeHeaders(message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        return send_with_headers


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
