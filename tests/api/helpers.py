from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from tests.builders import Centre


def session_body(centre: Centre, tutor: str = "tutor", **overrides: Any) -> dict[str, Any]:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    body: dict[str, Any] = {
        "title": "Reading and ratios",
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=1)).isoformat(),
        "mode": "ONLINE",
        "meetingLink": "https://meet.example.org/r1",
        "tutorId": str(centre[tutor].user_id),
    }
    body.update(overrides)
    return body


def schedule(
    client: TestClient[Litestar], centre: Centre, tutor: str = "tutor", **overrides: Any
) -> str:
    response = client.post(
        "/api/v1/sessions",
        json=session_body(centre, tutor, **overrides),
        headers=centre.auth(tutor),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sessionId"])


def enrol(
    client: TestClient[Litestar], centre: Centre, session: str, *students: str, as_: str = "tutor"
) -> None:
    for student in students:
        response = client.post(
            f"/api/v1/sessions/{session}/enrolments",
            json={
                "studentId": str(centre[student].user_id),
                "courseId": f"course-{student}",
                "lessonId": "lesson-1",
            },
            headers=centre.auth(as_),
        )
        assert response.status_code == 201, response.text


def start(client: TestClient[Litestar], centre: Centre, session: str, as_: str = "tutor") -> None:
    response = client.post(f"/api/v1/sessions/{session}/start", headers=centre.auth(as_))
    assert response.status_code == 200, response.text


def live_session(client: TestClient[Litestar], centre: Centre, *students: str) -> str:
    session = schedule(client, centre)
    enrol(client, centre, session, *students)
    start(client, centre, session)
    return session


def marks(centre: Centre, session: str, **statuses: str) -> dict[str, Any]:
    return {
        "sessionId": session,
        "records": [
            {"studentId": str(centre[s].user_id), "status": st} for s, st in statuses.items()
        ],
    }


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body
