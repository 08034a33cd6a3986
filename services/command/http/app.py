"""The command API as a Litestar application."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
from litestar import Litestar, Request

from services.command.application import TutoringCentres
from services.command.http.adapter import route_handlers
from services.command.http.problems import EXCEPTION_HANDLERS
from services.command.http.routes import HELP_RATE_LIMIT
from shared.http import ratelimit
from shared.http.api import api_app

SERVICE = "command"


def rate_limits(env: Mapping[str, str] | None = None) -> list[ratelimit.RateLimit]:
    """Per caller: ``TUTORPULSE_HELP_RATE_LIMIT`` (5/minute) for raising help requests and
    ``TUTORPULSE_RATE_LIMIT`` (600/minute) for every request. The tighter one comes first, so
    its ``RateLimit-*`` headers are the ones a help request's answer carries."""
    env = os.environ if env is None else env
    return [*ratelimit.limit_from(env, "TUTORPULSE_HELP_RATE_LIMIT", "5/minute", "help-requests",
                                  applies=_raises_help),
            *ratelimit.from_environment(env)]


def _raises_help(request: Request[Any, Any, Any]) -> bool:
    handler = request.scope.get("route_handler")
    return handler is not None and handler.opt.get("rate_limit") == HELP_RATE_LIMIT


def create_app(centres: TutoringCentres, *, own_resources: bool = True,
               limits: Sequence[ratelimit.RateLimit] | None = None) -> Litestar:
    """``own_resources``: close the event store when the app stops. ``limits``: the per-caller
    rate limits (by default from the environment, see :func:`rate_limits`)."""

    async def ready() -> None:
        await anyio.to_thread.run_sync(centres.recorder.max_notification_id)

    return api_app(
        SERVICE, title="tutorpulse command API",
        controllers=route_handlers(),
        readiness=ready, provides={"centres": centres},
        exception_handlers=EXCEPTION_HANDLERS,
        on_shutdown=centres.close if own_resources else None,
        rate_limits=rate_limits() if limits is None else limits,
    )


def app_from_environment() -> Litestar:
    from shared.observability import configure_logging

    configure_logging(SERVICE)
    return create_app(TutoringCentres())


