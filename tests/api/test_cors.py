"""Browsers may call the command and query APIs from the tutor's page (another origin: the
gateway's) and from no other: preflights, answers and refusals carry the CORS headers for the
origins allowed, and only for them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from services.command.settings import CommandSettings
from services.query.app import create_app as query_app
from services.query.settings import QuerySettings
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load
from tests.api.test_work import FRACTIONS
from tests.builders import Centre

PAGE = "https://tutor.example.org"
ELSEWHERE = "https://elsewhere.example.org"


def settings(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {
        **os.environ,
        "TUTORPULSE_BLOB_DIR": str(tmp_path / "blobs"),
        "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
        **variables,
    }


@pytest.fixture
def command_api(centres: TutoringCentres, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    environment = settings(tmp_path, TUTORPULSE_CORS_ORIGINS=PAGE)
    app = create_app(centres, own_resources=False, settings=load(CommandSettings, environment))
    with TestClient(app) as client:
        yield client


def preflight(client: TestClient[Litestar], origin: str, path: str) -> dict[str, str]:
    answer = client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    return {"status": str(answer.status_code), **answer.headers}


def test_the_page_may_send_a_command_and_read_its_answer(
    command_api: TestClient[Litestar], alpha: Centre
) -> None:
    allowed = preflight(command_api, PAGE, "/api/v1/exercises")
    assert allowed["status"] == "204"
    assert allowed["access-control-allow-origin"] == PAGE
    assert {"authorization", "content-type", "idempotency-key"} <= {
        name.strip().lower() for name in allowed["access-control-allow-headers"].split(",")
    }
    sent = command_api.post(
        "/api/v1/exercises",
        json=FRACTIONS,
        headers={**alpha.auth("tutor"), "Origin": PAGE, "Idempotency-Key": "cors-1"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.headers["access-control-allow-origin"] == PAGE
    assert "x-tutorpulse-position" in sent.headers["access-control-expose-headers"].lower()


def test_the_page_may_read_a_refusals_problem(command_api: TestClient[Litestar]) -> None:
    refused = command_api.post("/api/v1/exercises", json=FRACTIONS, headers={"Origin": PAGE})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == PAGE
    assert refused.json()["detail"]


def test_another_origin_gets_no_cors_headers(
    command_api: TestClient[Litestar], alpha: Centre
) -> None:
    assert preflight(command_api, ELSEWHERE, "/api/v1/exercises")["status"] == "400"
    answer = command_api.post(
        "/api/v1/exercises",
        json=FRACTIONS,
        headers={**alpha.auth("tutor"), "Origin": ELSEWHERE},
    )
    assert "access-control-allow-origin" not in answer.headers


def test_outside_development_mode_nothing_is_allowed_unless_named(
    centres: TutoringCentres, tmp_path: Path
) -> None:
    environment = settings(tmp_path)
    app = create_app(centres, own_resources=False, settings=load(CommandSettings, environment))
    with TestClient(app) as client:
        gateway = "http://127.0.0.1:8013"
        answer = client.post("/api/v1/exercises", json=FRACTIONS, headers={"Origin": gateway})
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-origin" not in preflight(client, gateway, "/api/v1/exercises")


def test_the_page_may_read_the_query_api(tmp_path: Path) -> None:
    environment = settings(tmp_path, TUTORPULSE_CORS_ORIGINS=PAGE)
    store = open_read_store(load(ReadStoreSettings, environment))
    app = query_app(store, own_resources=True, settings=load(QuerySettings, environment))
    with TestClient(app) as client:
        answer = client.get("/api/academic/tutor/my-day", headers={"Origin": PAGE})
        elsewhere = client.get("/api/academic/tutor/my-day", headers={"Origin": ELSEWHERE})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert "access-control-allow-origin" not in elsewhere.headers
