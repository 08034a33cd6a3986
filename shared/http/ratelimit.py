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
from collections.abc import Callable, Sequence
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

    def key(self, request: Request[Any, Any, Any]) -> str:
        """The key of the caller's window, as :class:`CountingRateLimitMiddleware` names it."""
        return f"{CountingRateLimitMiddleware.__name__}::{self.name}:{caller(request)}"

    @property
    def middleware(self) -> DefineMiddleware:
        return self.config().middleware


class CountingRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's fixed window (it starts with a caller's first request and lasts the limit's
    unit; the same answers and headers), counted in a plain dict of the application. Litestar's
    own keeps the time of every request of the window in its store, JSON-encoded, and reads and
    writes it under a lock on each request: 600 numbers for a caller near ``600/minute``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request: Request[Any, Any, Any] = Request(scope)
        if self.check_throttle_handler is None or await self.check_throttle_handler(request):
            key = self.cache_key_from_request(request)
            counted: dict[str, tuple[int, int]] | None = scope.get(COUNTED)  # type: ignore[assignment]
            if counted is not None and key in counted:
                count, reset = counted[key]  # counted already, by the command fast path
            else:
                windows = windows_of(scope)
                count, reset = window(windows, key, DURATION_VALUES[self.unit])
                if count >= self.max_requests:
                    raise TooManyRequestsException(headers=self._headers(count, reset))
                count += 1
                remember(windows, key, count, reset)
            send = self._with_headers(send, self._headers(count, reset))
        await self.app(scope, receive, send)

    def _headers(self, count: int, reset: int) -> dict[str, str]:
        return headers_of(self.max_requests, DURATION_VALUES[self.unit], count, reset)

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


WINDOWS = "tutorpulse.rate_limit_windows"
"""Where the application's state keeps, per key, requests so far and when the window ends
(one dict for the middleware of every route)."""
SWEEP_AT = 10_000
"""Keys kept before the windows that ended are forgotten."""
COUNTED = "tutorpulse.rate_limits_counted"
"""Where a request's scope keeps the windows it was already counted in (key -> requests so far
and end of window), by :func:`count_ahead`: a request the command fast path hands on to the
application after counting it is not counted twice."""


def windows_of(scope: Scope) -> dict[str, tuple[int, int]]:
    state: dict[str, tuple[int, int]] = scope["litestar_app"].state.setdefault(WINDOWS, {})
    return state


def window(windows: dict[str, tuple[int, int]], key: str, seconds: int) -> tuple[int, int]:
    """Requests counted so far in ``key``'s window and when it ends (a new window if it did)."""
    now = int(time.time())
    count, reset = windows.get(key, (0, 0))
    if reset <= now:
        return 0, now + seconds
    return count, reset


def remember(windows: dict[str, tuple[int, int]], key: str, count: int, reset: int) -> None:
    if len(windows) >= SWEEP_AT and key not in windows:
        now = int(time.time())
        for ended in [k for k, (_, ends) in windows.items() if ends <= now]:
            del windows[ended]
    windows[key] = (count, reset)


def headers_of(limit: int, seconds: int, count: int, reset: int) -> dict[str, str]:
    """The ``RateLimit-*`` headers of an answer ``count`` requests into a window of ``limit``."""
    return {
        RateLimitConfig.rate_limit_policy_header_key: f"{limit}; w={seconds}",
        RateLimitConfig.rate_limit_limit_header_key: str(limit),
        RateLimitConfig.rate_limit_remaining_header_key: str(max(0, limit - count)),
        RateLimitConfig.rate_limit_reset_header_key: str(reset - int(time.time())),
    }


def count_ahead(
    limits: Sequence[RateLimit], request: Request[Any, Any, Any]
) -> dict[str, str] | None:
    """Count ``request`` in each of ``limits`` that applies to it, as the limits' middleware
    would (it then counts it no more, :data:`COUNTED`), and return the ``RateLimit-*`` headers of
    its answer (those of the first limit that applies, as the middleware's order makes them).
    ``None``, counting nothing, when a window is full: the middleware answers that request."""
    scope = request.scope
    windows = windows_of(scope)
    found: list[tuple[str, RateLimit, int, int]] = []
    for limit in limits:
        if limit.applies is not None and not limit.applies(request):
            continue
        key = limit.key(request)
        count, reset = window(windows, key, DURATION_VALUES[limit.per])
        if count >= limit.count:
            return None
        found.append((key, limit, count + 1, reset))
    counted: dict[str, tuple[int, int]] = {}
    for key, _, count, reset in found:
        remember(windows, key, count, reset)
        counted[key] = (count, reset)
    scope[COUNTED] = counted  # type: ignore[literal-required]
    if not found:
        return {}
    _, first, count, reset = found[0]
    return headers_of(first.count, DURATION_VALUES[first.per], count, reset)


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
