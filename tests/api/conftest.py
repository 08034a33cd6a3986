from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import Centre, register_centre


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def centres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TutoringCentres]:
    """Every API test runs on the embedded SQLite store and on a real PostgreSQL."""
    if request.param == "sqlite":
        env = {
            "TUTORPULSE_STORE": "sqlite",
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
        }
    else:
        env = request.getfixturevalue("pg").env()
    app = TutoringCentres(load(EventStoreSettings, env))
    yield app
    app.close()


@pytest.fixture
def alpha(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "alpha")


@pytest.fixture
def beta(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "beta")


@pytest.fixture
def client(centres: TutoringCentres) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(centres)) as test_client:
        yield test_client
