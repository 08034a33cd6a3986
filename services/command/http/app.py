"""The command API as a Litestar application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from services.command.application import ConcurrentUpdate, NotFound, TutoringCentres
from services.command.domain.aggregate import InvalidTransition, InvalidValue, RuleViolated
from services.command.http.controllers import (
    AttendanceController,
    CentreController,
    PeopleController,
    SessionController,
)
from services.command.idempotency import KeyReused
from shared.http.auth import permission_guard, provide_actor
from shared.http.operations import operations_router, prometheus
from shared.http.problems import BASE_HANDLERS, simple

SERVICE = "command"


def create_app(centres: TutoringCentres, *, own_resources: bool = True) -> Litestar:
    """``own_resources``: close the event store when the app stops."""
    async def ready() -> None:
        await anyio.to_thread.run_sync(centres.recorder.max_notification_id)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_resources:
                centres.close()

    metrics = prometheus(SERVICE)
    return Litestar(
        route_handlers=[
            CentreController, PeopleController, SessionController, AttendanceController,
            operations_router(SERVICE, ready),
        ],
        dependencies={
            "actor": Provide(provide_actor),
            "centres": Provide(lambda: centres, sync_to_thread=False, use_cache=True),
        },
        exception_handlers={
            **BASE_HANDLERS,
            InvalidValue: simple(422, "Invalid value"),
            InvalidTransition: simple(409, "Invalid transition"),
            RuleViolated: simple(409, "Conflict"),
            ConcurrentUpdate: simple(409, "Concurrent update"),
            KeyReused: simple(422, "Idempotency-Key reused"),
            NotFound: simple(404, "Not found"),
        },
        guards=[permission_guard],
        middleware=[metrics.middleware],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="tutorpulse command API",
            version="1.0.0",
            path="/schema",
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}),
            security=[{"bearer": []}],
        ),
        logging_config=None,
        debug=False,
    )


def app_from_environment() -> Litestar:
    from shared.observability import configure_logging

    configure_logging(SERVICE)
    return create_app(TutoringCentres())


