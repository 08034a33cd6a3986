from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from shared.blobs.settings import BlobSettings
from shared.blobs.store import BlobStore, open_blob_store
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import Centre, register_centre
from tests.support.servers import running_s3

SHEET_KEY = b"a test key for worksheet codes, 32+ bytes"


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
    app = TutoringCentres(load(EventStoreSettings, env), sheet_key=SHEET_KEY)
    yield app
    app.close()


@pytest.fixture
def alpha(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "alpha")


@pytest.fixture
def beta(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "beta")


@pytest.fixture
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """Scans kept under the test's own folder; where the events are in PostgreSQL, as in
    production, in an S3-compatible store (a moto server of the test's own)."""
    on_postgres = (
        getattr(request.node, "callspec", None)
        and request.node.callspec.params.get("centres") == "postgres"
    )
    with ExitStack() as stack:
        if on_postgres:
            env = stack.enter_context(running_s3()).env(bucket="scans")
        else:
            env = {"TUTORPULSE_BLOB_DIR": str(tmp_path / "blobs"), "TUTORPULSE_DEV_MODE": "1"}
        store = open_blob_store(load(BlobSettings, env))
        yield store
        store.close()


@pytest.fixture
def client(centres: TutoringCentres, blobs: BlobStore) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(centres, blobs=blobs)) as test_client:
        yield test_client
