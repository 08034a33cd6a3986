"""The query API tells stale from fresh: its /ready reports the projection lag and refuses
past the limit, and every unpositioned read says which watermark it reflects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services.query.app import create_app
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.readside import demo_events, read_store

WATERMARK = demo_events()[-1][1]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReadStore]:
    store = read_store(tmp_path)
    apply_all(store, demo_events())
    store.advance_watermark(WATERMARK)
    yield store
    store.close()


def auth(handle: str) -> dict[str, str]:
    person = demo_person(handle)
    return {"Authorization": f"Bearer {mint(Actor(person.id, person.role, DEMO_CENTRE))}"}


def test_ready_reports_the_lag_and_refuses_once_it_lasts_past_the_limit(
    store: ReadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTORPULSE_QUERY_MAX_LAG_EVENTS", "10")
    monkeypatch.setenv("TUTORPULSE_QUERY_LAG_GRACE_SECONDS", "0")
    head = [WATERMARK]
    with TestClient(create_app(store, head=lambda: head[0])) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["details"] == {
            "watermark": WATERMARK,
            "head": WATERMARK,
            "lagEvents": 0,
        }
        head[0] = WATERMARK + 31  # the projections stopped 31 events ago
        stale = client.get("/ready")
        assert stale.status_code == 503
        assert stale.json()["details"]["lagEvents"] == 31
        assert "31 events behind" in stale.json()["reason"]
        metrics = client.get("/metrics").text
        assert "tutorpulse_query_lag_events 31.0" in metrics
        store.advance_watermark(WATERMARK + 31)
        assert client.get("/ready").status_code == 200


def test_an_unreadable_event_store_head_leaves_the_query_api_ready(store: ReadStore) -> None:
    def head() -> int:
        raise ConnectionError("event store down")

    with TestClient(create_app(store, head=head)) as client:
        ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["details"]["head"] is None
    assert "event store down" in ready.json()["details"]["headUnknown"]


def first_id(event_type: str, field: str) -> str:
    return next(str(getattr(e, field)) for e, _ in demo_events() if e.type_name == event_type)


NO_DEMO_DOCUMENT = {
    "/api/v1/classes/{class_id:uuid}/roster",
    "/api/v1/paper/uploads/{upload_id:uuid}",
    "/api/v1/paper/uploads/{upload_id:uuid}/pages/{page:int}/marked.png",
    "/api/v1/blobs/{key:path}",
    "/api/v1/people/{person_id:uuid}/export",
}
"""Read routes the demo centre has nothing for (it has no class and no paper uploads; the blob
route serves stored files by signed URL, not read models): tests/api/test_paper_queries.py
reads them. A person's export also reads the event store, which this app is not given:
tests/api/test_privacy_queries.py reads it."""


def test_every_read_route_carries_the_watermark_it_reflects(store: ReadStore) -> None:
    ids = {
        "{session_id:uuid}": first_id("SessionScheduled", "session_id"),
        "{student_id:uuid}": str(demo_person("jane").id),
        "{exercise_id:uuid}": first_id("ExercisePublished", "aggregate_id"),
        "{homework_id:uuid}": first_id("HomeworkAssigned", "aggregate_id"),
    }
    with TestClient(create_app(store)) as client:
        reads = {
            route.path
            for route in client.app.routes
            if "GET" in getattr(route, "methods", ()) and route.path.startswith("/api/")
        }
        for path in sorted(reads - NO_DEMO_DOCUMENT):
            url = path
            for placeholder, value in ids.items():
                url = url.replace(placeholder, value)
            who = "jane" if "students" in path else "john" if "my-day" in path else "sarah"
            response = client.get(url, headers=auth(who))
            assert response.status_code == 200, (url, response.text)
            assert response.headers["X-Tutorpulse-Watermark"] == str(WATERMARK), url
