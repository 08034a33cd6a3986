"""``/health``, ``/ready`` and ``/metrics``: the same three endpoints on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Response, Router, get
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
        except Exception as error:  # noqa: BLE001 - any failure means not ready
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
    )
