"""Every route of the command and query APIs names its permission, refuses a caller without a
token (401) and refuses every role the one matrix does not grant it (403), before reading
anything: a new endpoint cannot forget its guard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.query.app import create_app as query_app
from shared.blobs.store import BlobStore
from shared.eventstore import EventStoreSettings
from shared.settings import load
from shared.tenancy import Actor, Permission, may
from shared.tenancy.roles import PEOPLE_ROLES
from shared.tenancy.tokens import mint
from tests.readside import read_store

OPERATIONS = {"/health", "/ready", "/metrics"}
SIGNED_URLS = {"/api/v1/blobs/{key:path}"}
"""Routes whose URL carries its own permission (a signature checked by the route): no token."""


def routes(app: Litestar) -> Iterator[tuple[str, str, Permission | None]]:
    """(method, concrete path, permission) of every API route; path parameters filled in."""
    for route in app.routes:
        if (
            not isinstance(route, HTTPRoute)
            or route.path in OPERATIONS
            or route.path in SIGNED_URLS
            or route.path.startswith("/schema")
        ):
            continue
        for handler in route.route_handlers:
            path = re.sub(r"\{[^}:]+:uuid\}", str(uuid4()), route.path)
            path = re.sub(r"\{[^}:]+:str\}", "alpha", path)
            path = re.sub(r"\{[^}:]+:int\}", "0", path)
            permission = handler.opt.get("permission")
            assert permission is None or isinstance(permission, Permission), permission
            for method in handler.http_methods:
                if method not in ("HEAD", "OPTIONS"):
                    yield method, path, permission


@pytest.fixture(params=["command", "query"])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, blobs: BlobStore
) -> Iterator[TestClient[Litestar]]:
    if request.param == "command":
        centres = TutoringCentres(
            load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
        )
        app = command_app(centres, blobs=blobs)
    else:
        app = query_app(read_store(tmp_path))
    with TestClient(app) as client:
        yield client


def test_every_route_is_guarded_by_a_permission_of_the_matrix(api: TestClient[Litestar]) -> None:
    found = list(routes(api.app))
    assert len(found) > 8
    unguarded = [f"{method} {path}" for method, path, permission in found if permission is None]
    assert unguarded == []
    checked = 0
    for method, path, permission in found:
        assert permission is not None
        response = api.request(method, path, json={})
        assert response.status_code == 401, (
            f"{method} {path} without a token: {response.status_code}"
        )
        for role in sorted(PEOPLE_ROLES):
            if may(role, permission):
                continue
            caller = Actor(user_id=uuid4(), role=role, centre_id="alpha")
            response = api.request(
                method, path, json={}, headers={"Authorization": f"Bearer {mint(caller)}"}
            )
            assert response.status_code == 403, f"{method} {path} as {role}: {response.status_code}"
            assert response.headers["content-type"].startswith("application/problem+json")
            checked += 1
    assert checked > 20
