"""A command request answered from the socket (services.command.http.fast) answers as the
application would: the same headers and body, a refusal as the application's problem, counted
once by the rate limits and the request metrics."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.helpers import is_problem, schedule, session_body
from tests.builders import Centre


def requests_counted(client: TestClient[Litestar], path: str, status: int) -> float:
    """``tutorpulse_requests_total`` of ``POST path`` answered ``status``."""
    for line in client.get("/metrics").text.splitlines():
        if (
            line.startswith("tutorpulse_requests_total{")
            and f'path="{path}"' in line
            and 'method="POST"' in line
            and f'status_code="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_counted_once(first: Response, second: Response, started: float) -> None:
    """``second`` (sent right after ``first``, both after ``started``) was counted once by the
    rate limit: one less left in the same window, or all but one of the limit if a new window
    began between them (the tests' windows last a second and end on the second)."""
    left = int(second.headers["RateLimit-Remaining"])
    one_less = int(first.headers["RateLimit-Remaining"]) - 1
    if int(time.time()) == int(started):
        assert left == one_less
    else:
        assert left in (one_less, int(second.headers["RateLimit-Limit"]) - 1)


@pytest.mark.parametrize(
    "unusual",
    [
        {"query": "?reason=none"},  # a query string: handed to the application
        {"content_type": "application/json; charset=utf-8"},  # the fast path still
    ],
    ids=["through-the-application", "json-with-charset"],
)
def test_a_command_answers_alike_on_the_fast_path_and_through_the_application(
    client: TestClient[Litestar], alpha: Centre, unusual: dict[str, str]
) -> None:
    first = session_body(alpha)
    started = time.time()
    plain = client.post("/api/v1/sessions", json=first, headers=alpha.auth("tutor"))
    later = first | {key: _hours_later(first[key], 3) for key in ("startsAt", "endsAt")}
    headers = alpha.auth("tutor") | {
        "Content-Type": unusual.get("content_type", "application/json")
    }
    other = client.post(
        "/api/v1/sessions" + unusual.get("query", ""),
        content=json.dumps(later).encode(),
        headers=headers,
    )
    assert plain.status_code == other.status_code == 201, (plain.text, other.text)
    assert set(plain.headers) == set(other.headers)
    for answer in (plain, other):
        assert answer.headers["content-type"] == "application/json"
        assert int(answer.headers["X-Tutorpulse-Position"]) == answer.json()["position"]
    assert set(plain.json()) == set(other.json())
    assert plain.json()["startsAt"] == first["startsAt"]
    assert other.json()["startsAt"] == later["startsAt"]
    assert_counted_once(plain, other, started)


def test_a_refused_command_is_the_applications_problem_counted_once(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    session = schedule(client, alpha)
    template = "/api/v1/sessions/{session_id}/end"
    before = requests_counted(client, template, 409)
    started = time.time()
    first = client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    again = client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    for answer in (first, again):
        problem = is_problem(answer, 409)
        assert problem["title"] == "Invalid transition"
        assert answer.headers["X-Request-Id"]
    assert_counted_once(first, again, started)
    assert requests_counted(client, template, 409) == before + 2


def test_the_same_idempotency_key_replays_the_first_answer(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    headers = alpha.auth("tutor") | {"Idempotency-Key": "fast-1"}
    body = session_body(alpha)
    first = client.post("/api/v1/sessions", json=body, headers=headers)
    replay = client.post("/api/v1/sessions/", json=body, headers=headers)  # the same route
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert replay.json()["sessionId"] == first.json()["sessionId"]
    reused = client.post("/api/v1/sessions", json=body | {"title": "Another"}, headers=headers)
    is_problem(reused, 422)


def _hours_later(moment: str, hours: int) -> str:
    return (datetime.fromisoformat(moment) + timedelta(hours=hours)).isoformat()
