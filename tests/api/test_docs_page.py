"""The API page at /schema works offline: everything it loads is served by the service itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.query.app import create_app as query_app
from shared.eventstore import EventStoreSettings
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load


@pytest.fixture(params=["command", "query"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Litestar]:
    if request.param == "command":
        centres = TutoringCentres(
            load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
        )
        yield command_app(centres)
    else:
        yield query_app(
            open_read_store(
                load(
                    ReadStoreSettings,
                    {"TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite")},
                )
            )
        )


def test_the_api_page_loads_nothing_from_elsewhere(app: Litestar) -> None:
    with TestClient(app) as client:
        page = client.get("/schema")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page.text)
        # (The embedded document's examples may show a URL, such as a meeting link.)
        loaded = assets + re.findall(r"\burl\s*[:(]\s*['\"]?([^'\")\s,]+)", page.text)
        assert [ref for ref in loaded if re.match(r"(?:https?:)?//", ref)] == []
        assert {Path(a).suffix for a in assets} >= {".js", ".css"}
        for asset in assets:
            served = client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 0
        assert client.get("/schema/openapi.json").json()["openapi"].startswith("3.1")
