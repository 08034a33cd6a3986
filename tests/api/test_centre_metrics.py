"""Command requests counted by centre and outcome, as ``/metrics`` shows them: each named
centre on its own, every other under ``other``, requests without a valid token under ``none``;
reads are not counted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from services.command.settings import CommandSettings
from shared.blobs.settings import BlobSettings
from shared.blobs.store import open_blob_store
from shared.eventstore import EventStoreSettings
from shared.observability.settings import MetricsSettings
from shared.settings import load
from tests.builders import Centre, register_centre
from tests.support.requests import session_body

NAME = "tutorpulse_centre_commands_total"


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    env = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    app = TutoringCentres(load(EventStoreSettings, env))
    yield app
    app.close()


@pytest.fixture
def client(centres: TutoringCentres, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    settings = replace(load(CommandSettings), metrics=MetricsSettings(centres=("metrics-north",)))
    blobs = open_blob_store(
        load(BlobSettings, {"TUTORPULSE_BLOB_DIR": str(tmp_path), "TUTORPULSE_DEV_MODE": "1"})
    )
    with TestClient(create_app(centres, settings=settings, blobs=blobs)) as test_client:
        yield test_client


def counted(client: TestClient[Litestar]) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == NAME:
                found[(sample.labels["centre"], sample.labels["outcome"])] = sample.value
    return found


def tomorrow() -> dict[str, Any]:
    return session_body(starts_in=timedelta(days=1))


def test_commands_are_counted_by_centre_and_outcome(
    centres: TutoringCentres, client: TestClient[Litestar]
) -> None:
    north: Centre = register_centre(centres, "metrics-north")
    south: Centre = register_centre(centres, "metrics-south")
    before = counted(client)

    for _ in range(3):
        ok = client.post("/api/v1/sessions", json=tomorrow(), headers=north.auth("tutor"))
        assert ok.status_code == 201, ok.text
    refused = client.post("/api/v1/sessions", json={}, headers=north.auth("tutor"))
    assert refused.status_code in (400, 422)
    other = client.post("/api/v1/sessions", json=tomorrow(), headers=south.auth("tutor"))
    assert other.status_code == 201, other.text
    anonymous = client.post("/api/v1/sessions", json=tomorrow())
    assert anonymous.status_code == 401
    assert client.get("/api/v1/sessions/unknown", headers=north.auth("tutor")).status_code in (
        404,
        405,
    )

    after = counted(client)
    grew = {key: after[key] - before.get(key, 0.0) for key in after}
    assert {key: n for key, n in grew.items() if n} == {
        ("metrics-north", "ok"): 3,
        ("metrics-north", "rejected"): 1,
        ("other", "ok"): 1,
        ("none", "rejected"): 1,
    }
