"""The command API as a Litestar application."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from litestar import Litestar, Request

from services.command.application import TutoringCentres
from services.command.http.adapter import in_command_thread, route_handlers
from services.command.http.fast import FastCommands
from services.command.http.paper import paper_route_handlers
from services.command.http.problems import EXCEPTION_HANDLERS
from services.command.http.routes import HELP_RATE_LIMIT
from services.command.metrics import CentreCounts
from services.command.privacy import PersonalData
from services.command.settings import CommandSettings
from shared.blobs.store import BlobStore, open_blob_store
from shared.http import ratelimit
from shared.http.api import api_app
from shared.http.openapi import POSITION, REPLAYED, Contract
from shared.http.operations import prometheus
from shared.http.settings import RateLimitSettings
from shared.observability.metrics import process_ended
from shared.settings import load
from shared.tenancy.tokens import check_at_start

SERVICE = "command"

CONTRACT = Contract(
    problems=frozenset({401, 403, 404, 409, 413, 415, 422, 503}),
    success_headers=(POSITION, REPLAYED),
    descriptions={
        404: "No such resource in the caller's centre (another centre's are not found "
        "either), or the centre acted in is not registered.",
        409: "The transition is not allowed (ending a SCHEDULED session…), a rule would be "
        "broken (a duplicate enrolment, a full session, a second open help request…), "
        "or others kept changing the same resource (retry).",
        413: "The body is larger than 2 MiB (every command reads its body, for the "
        "Idempotency-Key).",
        422: "A value is invalid (`field` names it), a referenced person is not in this "
        "centre, the Idempotency-Key was used for another request, the body is missing, "
        "or the command would record more than an event can carry.",
    },
)
"""Every command may answer these problems; one that takes a body also 400."""


def rate_limits(settings: RateLimitSettings) -> list[ratelimit.RateLimit]:
    """Per caller: ``TUTORPULSE_HELP_RATE_LIMIT`` (5/minute) for raising help requests and
    ``TUTORPULSE_RATE_LIMIT`` (600/minute) for every request. The tighter one comes first, so
    its ``RateLimit-*`` headers are the ones a help request's answer carries."""
    return [
        *ratelimit.limit_of("help-requests", settings.help_requests, applies=_raises_help),
        *ratelimit.limit_of("requests", settings.requests),
    ]


def _raises_help(request: Request[Any, Any, Any]) -> bool:
    handler = request.scope.get("route_handler")
    return handler is not None and handler.opt.get("rate_limit") == HELP_RATE_LIMIT


def create_app(
    centres: TutoringCentres,
    *,
    own_resources: bool = True,
    limits: Sequence[ratelimit.RateLimit] | None = None,
    settings: CommandSettings | None = None,
    blobs: BlobStore | None = None,
) -> Litestar:
    """``own_resources``: close the event store (and the blob store) when the app stops.
    ``limits``: the per-caller rate limits (by default those of the settings, see
    :func:`rate_limits`). ``settings``: by default read from the environment. ``blobs``: where
    scans are kept (by default the store the settings name).

    Personal texts are sealed with the key store of ``centres`` (one is opened beside its
    events, with the settings' master keys, if it has none) and every answer is opened for
    the caller's centre."""
    settings = load(CommandSettings) if settings is None else settings
    privacy = centres.privacy
    if privacy is None:
        privacy = PersonalData.open(
            centres.store_settings, settings.privacy, dev_mode=settings.api.tokens.dev_mode
        )
        centres.protect(privacy)
    blobs = open_blob_store(settings.blobs) if blobs is None else blobs

    def close() -> None:
        centres.close()
        blobs.close()
        process_ended(settings.multiprocess_metrics_dir, os.getpid())

    async def ready() -> None:
        await anyio.to_thread.run_sync(centres.recorder.max_notification_id)
        await anyio.to_thread.run_sync(privacy.ready)

    limits = rate_limits(settings.rate_limits) if limits is None else limits

    def fast_commands(application: Any) -> FastCommands:
        return FastCommands(
            application,
            centres,
            limits=tuple(limits),
            prometheus=prometheus(SERVICE),
            run=in_command_thread,
        )

    app = api_app(
        SERVICE,
        title="tutorpulse command API",
        controllers=[
            *route_handlers(centres),
            *paper_route_handlers(settings.paper),
        ],
        readiness=ready,
        provides={"centres": centres, "blobs": blobs, "paper": settings.paper},
        exception_handlers=EXCEPTION_HANDLERS,
        contract=CONTRACT,
        on_shutdown=close if own_resources else None,
        settings=settings.api,
        rate_limits=limits,
        metrics_dir=settings.multiprocess_metrics_dir,
        front=fast_commands,
        revealer=privacy.revealer,
        erasures=privacy.erasures,
    )
    app.before_send.append(CentreCounts(settings.metrics))
    return app


def app_from_environment() -> Litestar:
    """What each uvicorn worker runs: the settings from the environment, once."""
    from services.settings import start

    settings = start(CommandSettings, SERVICE)
    check_at_start(SERVICE, settings.api.tokens)  # the secret every request needs, first
    centres = TutoringCentres(settings.event_store, sheet_key=settings.paper.signing_key())
    return create_app(centres, settings=settings)  # with the key store beside the events
