"""The command API as a Litestar application."""

from __future__ import annotations

import anyio.to_thread
from litestar import Litestar

from services.command.application import ConcurrentUpdate, NotFound, TutoringCentres
from services.command.domain.aggregate import InvalidTransition, InvalidValue, RuleViolated
from services.command.http.controllers import (
    AcademicProfileController,
    AttendanceController,
    CatchUpController,
    CentreController,
    ClassController,
    ExerciseController,
    HelpRequestController,
    HomeworkController,
    LiveSessionController,
    NoteController,
    PeopleController,
    SessionController,
    WorkController,
)
from services.command.idempotency import KeyReused
from shared.http.api import api_app
from shared.http.problems import simple

SERVICE = "command"


def create_app(centres: TutoringCentres, *, own_resources: bool = True) -> Litestar:
    """``own_resources``: close the event store when the app stops."""

    async def ready() -> None:
        await anyio.to_thread.run_sync(centres.recorder.max_notification_id)

    return api_app(
        SERVICE, title="tutorpulse command API",
        controllers=[CentreController, PeopleController, SessionController, LiveSessionController,
                     HelpRequestController, AttendanceController, CatchUpController, NoteController,
                     ClassController, ExerciseController, WorkController, HomeworkController,
                     AcademicProfileController],
        readiness=ready, provides={"centres": centres},
        exception_handlers={
            InvalidValue: simple(422, "Invalid value"),
            InvalidTransition: simple(409, "Invalid transition"),
            RuleViolated: simple(409, "Conflict"),
            ConcurrentUpdate: simple(409, "Concurrent update"),
            KeyReused: simple(422, "Idempotency-Key reused"),
            NotFound: simple(404, "Not found"),
        },
        on_shutdown=centres.close if own_resources else None,
    )


def app_from_environment() -> Litestar:
    from shared.observability import configure_logging

    configure_logging(SERVICE)
    return create_app(TutoringCentres())


