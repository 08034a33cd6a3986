"""The one way tutorpulse builds an HTTP API: bearer auth, the permission guard, problem
details, Prometheus, OpenAPI with bearer security, and the operations endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from shared.http.auth import permission_guard, provide_actor
from shared.http.operations import ReadinessCheck, operations_router, prometheus
from shared.http.problems import BASE_HANDLERS, ExceptionHandler


def api_app(
    service: str,
    *,
    title: str,
    controllers: Sequence[Any],
    readiness: ReadinessCheck,
    provides: dict[str, Any],
    exception_handlers: dict[type[Exception] | int, ExceptionHandler],
    on_shutdown: Callable[[], None] | None = None,
) -> Litestar:
    """``provides``: the named objects handlers receive (the store they work on)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()

    dependencies = {"actor": Provide(provide_actor)} | {
        name: Provide(_constant(value), sync_to_thread=False, use_cache=True)
        for name, value in provides.items()}
    return Litestar(
        route_handlers=[*controllers, operations_router(service, readiness)],
        dependencies=dependencies,
        guards=[permission_guard],
        exception_handlers={**BASE_HANDLERS, **exception_handlers},
        middleware=[prometheus(service).middleware],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title=title, version="1.0.0", path="/schema",
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}),
            security=[{"bearer": []}]),
        logging_config=None,
        debug=False,
    )


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value
