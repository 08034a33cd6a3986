"""The catalogue and the API document stay true to the code."""

from __future__ import annotations

from pathlib import Path

from shared import events

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_event_type_is_in_the_catalogue() -> None:
    catalogue = (DOCS / "events.md").read_text()
    missing = [name for name in events.event_types() if not name.startswith("_")
               and f"### {name}" not in catalogue]
    assert missing == []


def test_every_command_route_is_in_the_api_document() -> None:
    from services.command.http import controllers

    api = (DOCS / "api.md").read_text()

    routes = []
    from services.query import app as query

    for controller in (controllers.CentreController, controllers.PeopleController,
                       controllers.SessionController, controllers.LiveSessionController,
                       controllers.HelpRequestController,
                       controllers.AttendanceController, controllers.CatchUpController,
                       controllers.NoteController, controllers.ClassController,
                       query.StudentReadController, query.ClassReadController,
                       query.TutorController, query.SessionReadController,
                       query.CatchUpReadController, query.AnalyticsController):
        for value in vars(controller).values():
            for path in getattr(value, "paths", ()):
                method = next(iter(value.http_methods))
                full = (controller.path + ("" if path == "/" else path)).replace(":uuid", "")
                routes.append(f"{method} {full}")
    missing = [route for route in routes if f"`{route}`" not in api]
    assert routes and missing == []
