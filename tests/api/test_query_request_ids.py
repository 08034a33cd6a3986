"""The query API, like the command API, answers each request's id and logs it with the
reader's centre and id on its access line."""

from __future__ import annotations

from pathlib import Path

import structlog
from litestar.testing import TestClient
from structlog.testing import capture_logs

from services.query.app import create_app
from shared.readmodels.projector import apply_all
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.api.test_query import auth
from tests.readside import demo_events, read_store


def test_a_query_answers_its_request_id_and_logs_it_with_the_reader(tmp_path: Path) -> None:
    store = read_store(tmp_path)
    try:
        apply_all(store, demo_events())
        store.advance_watermark(demo_events()[-1][1])
        with (
            TestClient(create_app(store)) as client,
            capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs,
        ):
            response = client.get(
                "/api/academic/tutor/my-day", headers=auth("john") | {"X-Request-Id": "read-1"}
            )
            unknown = client.get("/api/v1/nothing-here", headers={"X-Request-Id": "read-2"})
    finally:
        store.close()
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == "read-1"
    assert unknown.status_code == 404 and unknown.headers["X-Request-Id"] == "read-2"
    lines = {line["request_id"]: line for line in logs if line["event"] == "request"}
    assert lines["read-1"]["status"] == 200
    assert lines["read-1"]["path"] == "/api/academic/tutor/my-day"
    assert lines["read-1"]["centre"] == DEMO_CENTRE
    assert lines["read-1"]["actor"] == str(demo_person("john").id)
    assert lines["read-2"]["status"] == 404
