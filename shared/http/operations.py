"""``/health``, ``/ready`` and ``/metrics``: the same three endpoints on every service."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from litestar import Litestar, Response, Router, get
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

ReadinessCheck = Callable[[], Awaitable[None]]


def operations_router(service: str, readiness: ReadinessCheck) -> Router:
    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @get("/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        try:
            await readiness()
        except Exception as error:
            return Response(
                {"status": "unavailable", "service": service, "reason": type(error).__name__},
                status_code=503,
            )
        return Response({"status": "ready", "service": service})

    class Metrics(PrometheusController):
        path = "/metrics"
        include_in_schema = False

    return Router(path="/", route_handlers=[health, ready, Metrics])


def prometheus(service: str) -> PrometheusConfig:
    return PrometheusConfig(
        app_name=service,
        prefix="tutorpulse",
        group_path=True,
        exclude=["^/metrics", "^/health", "^/ready"],
        labels={"service": service},
        scopes={ScopeType.HTTP},
    )


def operations_server(service: str, readiness: ReadinessCheck, *, host: str, port: int) -> uvicorn.Server:
    """A small HTTP server with only the operations endpoints, for services whose work is not
    HTTP (relay, projections). Signals are left to the caller's event loop."""
    from shared.http.problems import BASE_HANDLERS

    app = Litestar(route_handlers=[operations_router(service, readiness)],
                   middleware=[prometheus(service).middleware], exception_handlers=BASE_HANDLERS,
                   logging_config=None)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                           access_log=False))
    # The caller's event loop owns SIGINT/SIGTERM (it stops the service's work, then this server).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server
