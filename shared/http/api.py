"""The one way tutorpulse builds an HTTP API: bearer auth, the permission guard, problem
details, per-caller rate limits, Prometheus, OpenAPI with bearer security, the operations
endpoints, a request id and access log line per request (:mod:`shared.observability.access`),
and, given the service's :class:`~shared.privacy.Revealer`, sealed texts opened in every answer
and erased people's tokens refused (:mod:`shared.http.opening`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import TooManyRequestsException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from shared.http.auth import permission_guard, provide_actor
from shared.http.cors import cors_config
from shared.http.docs_page import docs_assets, docs_page
from shared.http.openapi import RATE_LIMIT, REQUEST_ID, REQUEST_ID_SENT, Contract, document
from shared.http.opening import opening
from shared.http.operations import (
    ReadinessCheck,
    describe,
    operations_router,
    prometheus,
    readiness_of,
)
from shared.http.problems import BASE_HANDLERS, ExceptionHandler, problem
from shared.http.ratelimit import RateLimit, retry_after
from shared.http.settings import ApiSettings
from shared.observability.access import with_request_log
from shared.privacy.erasure import ErasureCheck, ErasureCheckUnavailable
from shared.privacy.reveal import Revealer
from shared.tenancy.tokens import KeysUnavailable, check_at_start

log = structlog.get_logger(__name__)


MAX_BODY_BYTES = 2 * 1024 * 1024
"""A larger request is a 413: no command can record that much (an event is at most
``shared.events.MAX_EVENT_BYTES``), and reading it would only cost memory."""


def api_app(
    service: str,
    *,
    title: str,
    controllers: Sequence[Any],
    readiness: ReadinessCheck,
    provides: dict[str, Any],
    exception_handlers: dict[type[Exception] | int, ExceptionHandler],
    contract: Contract,
    settings: ApiSettings,
    on_shutdown: Callable[[], None] | None = None,
    rate_limits: Sequence[RateLimit] = (),
    metrics_dir: Path | None = None,
    front: Callable[[Any], Any] | None = None,
    revealer: Revealer | None = None,
    erasures: ErasureCheck | None = None,
) -> Litestar:
    """``provides``: the named objects handlers receive (the store they work on);
    ``contract``: what every operation documents besides its own answer (with rate limits,
    each may also answer 429, and every answer carries the ``RateLimit-*`` headers).

    ``metrics_dir``: see :func:`shared.http.operations.operations_router`.

    ``front``: wraps Litestar's ASGI handler (its exception handling and routing), inside the
    request log and the ``before_send`` hooks: a path that answers some requests itself.

    ``revealer``: opens the sealed texts of every JSON answer with an actor (``front``'s too)
    for the acting centre; ``erasures``: refuses the tokens of erased people (by default a
    check on the revealer's key store, with the key cache's default seconds). Without a
    revealer, answers go out as they are and every valid token works.

    Refuses (:class:`TokenConfigurationError`) to build an app whose token settings are
    unsafe, e.g. no ``TUTORPULSE_JWT_SECRET`` outside development mode."""
    check_at_start(service, settings.tokens)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    contract = replace(
        contract,
        answer_headers=(REQUEST_ID, *contract.answer_headers),
        request_headers=(*contract.request_headers, REQUEST_ID_SENT),
    )
    if rate_limits:
        contract = replace(
            contract,
            problems=contract.problems | {429},
            answer_headers=(*contract.answer_headers, *RATE_LIMIT),
        )
    dependencies = {"actor": Provide(provide_actor)} | {
        name: Provide(_constant(value), sync_to_thread=False, use_cache=True)
        for name, value in provides.items()
    }
    app = Litestar(
        route_handlers=[
            *controllers,
            operations_router(
                service,
                readiness,
                timeout=settings.readiness.timeout_seconds,
                metrics_dir=metrics_dir,
            ),
            docs_assets(),
        ],
        dependencies=dependencies,
        guards=[permission_guard],
        exception_handlers={
            **BASE_HANDLERS,
            TooManyRequestsException: _too_many_requests,
            KeysUnavailable: _keys_unavailable,
            ErasureCheckUnavailable: _erasures_unavailable,
            **exception_handlers,
        },
        middleware=[prometheus(service).middleware, *(limit.middleware for limit in rate_limits)],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title=title,
            version="1.0.0",
            path="/schema",
            render_plugins=[docs_page()],
            components=Components(
                headers=contract.header_components(),
                responses=contract.response_components(),
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                },
            ),
            security=[{"bearer": []}],
        ),
        logging_config=None,
        debug=False,
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=cors_config(settings.cors, dev_mode=settings.tokens.dev_mode),
    )
    document(app, contract)
    if front is not None:
        app.asgi_handler = front(app.asgi_handler)
    if revealer is not None:
        erasures = ErasureCheck(revealer.keys) if erasures is None else erasures
        app.asgi_handler = opening(revealer, erasures)(app.asgi_handler)
    return with_request_log(app, service)


def _too_many_requests(
    request: Request[Any, Any, Any], error: TooManyRequestsException
) -> Response[Any]:
    seconds = retry_after(error)
    log.info("request.rate_limited", path=request.url.path, retry_after=seconds)
    return problem(
        429,
        "Too many requests",
        f"too many requests from this caller; try again in {seconds} s",
        headers={**(error.headers or {}), "Retry-After": seconds},
    )


def _keys_unavailable(request: Request[Any, Any, Any], error: KeysUnavailable) -> Response[Any]:
    return problem(503, "Service unavailable", str(error), headers={"Retry-After": "5"})


def _erasures_unavailable(
    request: Request[Any, Any, Any], error: ErasureCheckUnavailable
) -> Response[Any]:
    readiness = readiness_of(request)
    if readiness is None:
        log.warning("request.erasure_check_unavailable", error=str(error.__cause__ or error))
    else:  # the key store's outage, logged once however many requests meet it
        readiness.request_failed(f"key store unreachable: {describe(error.__cause__ or error)}")
    return problem(503, "Service unavailable", str(error), headers={"Retry-After": "5"})


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value
