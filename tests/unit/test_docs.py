"""The catalogue and the API document stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from shared import events

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_event_type_is_in_the_catalogue() -> None:
    catalogue = (DOCS / "events.md").read_text()
    missing = [
        name
        for name in events.event_types()
        if not name.startswith("_") and f"### {name}" not in catalogue
    ]
    assert missing == []


def test_every_route_is_in_the_api_document() -> None:
    from litestar import Controller

    from services.command.http.routes import ROUTES
    from services.query import app as query

    api = (DOCS / "api.md").read_text()
    routes = [f"{r.method} " + re.sub(r":\w+}", "}", r.path) for r in ROUTES]
    for module in (query,):
        for controller in vars(module).values():
            if not (
                isinstance(controller, type)
                and issubclass(controller, Controller)
                and controller is not Controller
            ):
                continue
            # Each controller sets its own ``path`` (Controller declares it only as a slot).
            prefix: str = vars(controller)["path"]
            for value in vars(controller).values():
                for path in getattr(value, "paths", ()):
                    method = next(iter(value.http_methods))
                    full = re.sub(r":\w+}", "}", prefix + ("" if path == "/" else path))
                    routes.append(f"{method} {full}")
    missing = [route for route in routes if f"`{route}`" not in api]
    assert len(routes) > 40 and missing == []
