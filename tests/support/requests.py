"""Bodies of the command API's requests, as a client sends them, and what a service answers
while a dependency of it is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def session_body(
    starts_in: timedelta = timedelta(hours=1),
    lasts: timedelta = timedelta(hours=1),
    **overrides: Any,
) -> dict[str, Any]:
    """``POST /api/v1/sessions``: an online session starting ``starts_in`` from now (to the
    second), for ``lasts``; ``overrides`` replace or add fields."""
    starts = datetime.now(UTC).replace(microsecond=0) + starts_in
    return {
        "title": "Fractions",
        "startsAt": starts.isoformat(),
        "endsAt": (starts + lasts).isoformat(),
        "mode": "ONLINE",
        "meetingLink": "https://meet.example.org/fractions",
        **overrides,
    }


def assert_unavailable(response: httpx.Response) -> None:
    """A dependency is down: 503, problem+json, and when to try again."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0


def assert_unready(response: httpx.Response) -> None:
    """``/ready`` says the service cannot serve, and why."""
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "unavailable" and response.json()["reason"]
