"""Every request of the command API has a request id: the caller's, or one made for it; it is
answered in ``X-Request-Id`` (problems included), bound to the request's log lines with the
centre and actor, and logged in one access line."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import structlog
from litestar import Litestar
from litestar.testing import TestClient
from structlog.testing import capture_logs

from tests.api.helpers import session_body
from tests.builders import Centre

GENERATED = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _requests(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "request"]


def test_a_request_id_sent_is_answered_and_on_every_log_line_with_the_actor(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    headers = {**alpha.auth("tutor"), "X-Request-Id": "click-0001", "traceparent": TRACEPARENT}
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = client.post("/api/v1/sessions", json=session_body(alpha), headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-Id"] == "click-0001"
    [line] = _requests(logs)
    assert line["log_level"] == "info"
    assert line["method"] == "POST"
    assert line["path"] == "/api/v1/sessions"
    assert line["status"] == 201
    assert line["duration_ms"] >= 0
    assert line["request_id"] == "click-0001"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["centre"] == "alpha"
    assert line["actor"] == str(alpha["tutor"].user_id)
    assert line["role"] == "TEACHER"


def test_a_request_without_a_usable_id_gets_one_made_for_it(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    made: list[str] = []
    for sent in (None, "x" * 129, 'quote"d', "with space", "", "ünïcode".encode(), "a,b"):
        headers = [(name.encode(), value.encode()) for name, value in alpha.auth("tutor").items()]
        if sent is not None:
            headers.append((b"X-Request-Id", sent if isinstance(sent, bytes) else sent.encode()))
        response = client.get("/api/v1/sessions/not-a-uuid", headers=headers)
        answered = response.headers["X-Request-Id"]
        assert GENERATED.fullmatch(answered), (sent, answered)
        made.append(answered)
    assert len(set(made)) == len(made)


def test_problems_and_unknown_paths_carry_the_request_id_and_are_logged(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        unauthorized = client.post(
            "/api/v1/sessions", json=session_body(alpha), headers={"X-Request-Id": "no-token"}
        )
        missing = client.get("/no/such/path", headers={"X-Request-Id": "lost-1"})
        invalid = client.post(
            "/api/v1/sessions",
            json={**session_body(alpha), "title": 3},
            headers={**alpha.auth("tutor"), "X-Request-Id": "bad-body"},
        )
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"].startswith("application/problem+json")
    assert unauthorized.headers["X-Request-Id"] == "no-token"
    assert missing.status_code == 404
    assert missing.headers["X-Request-Id"] == "lost-1"
    assert invalid.status_code == 422
    assert invalid.headers["X-Request-Id"] == "bad-body"
    lines = {line["request_id"]: line for line in _requests(logs)}
    assert lines["no-token"]["status"] == 401
    assert "actor" not in lines["no-token"]
    assert lines["lost-1"]["status"] == 404
    assert lines["lost-1"]["path"] == "/no/such/path"
    assert lines["bad-body"]["status"] == 422
    assert lines["bad-body"]["centre"] == "alpha"


def test_probes_are_logged_at_debug_level(client: TestClient[Litestar]) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        assert client.get("/health").status_code == 200
    [line] = _requests(logs)
    assert line["log_level"] == "debug"
    assert line["path"] == "/health"
    assert "centre" not in line


def test_the_openapi_document_names_the_request_id_on_every_answer(
    client: TestClient[Litestar],
) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["components"]["headers"]["X-Request-Id"]["required"] is True
    operation = document["paths"]["/api/v1/sessions"]["post"]
    assert any(p["name"] == "X-Request-Id" for p in operation["parameters"])
    for answer in operation["responses"].values():
        answer = (
            document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
            if "$ref" in answer
            else answer
        )
        assert "X-Request-Id" in answer.get("headers", {}), answer
