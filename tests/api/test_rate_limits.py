"""Per-caller rate limits on the command API: a 429 problem with Retry-After for the caller who
floods it, nobody else affected, and a tighter limit on raising help requests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app, rate_limits
from shared.http.settings import RateLimitSettings
from shared.settings import load
from tests.api.helpers import is_problem, live_session
from tests.builders import Centre

LIMITS = load(
    RateLimitSettings,
    {"TUTORPULSE_RATE_LIMIT": "20/minute", "TUTORPULSE_HELP_RATE_LIMIT": "3/minute"},
)


@pytest.fixture
def limited(centres: TutoringCentres) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(centres, limits=rate_limits(LIMITS))) as test_client:
        yield test_client


def throttled(response: httpx.Response) -> int:
    """The problem a throttled caller gets; returns its Retry-After in seconds."""
    body = is_problem(response, 429)
    headers = response.headers
    assert body["title"] == "Too many requests"
    seconds = int(headers["Retry-After"])
    assert 1 <= seconds <= 60
    return seconds


def test_a_student_hammering_help_requests_is_throttled_and_nobody_else(
    limited: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = live_session(limited, alpha, "ann", "ben")
    url = f"/api/v1/sessions/{session}/help-requests"
    answers = [
        limited.post(url, json={"priority": "HIGH"}, headers=alpha.auth("ann")).status_code
        for _ in range(3)
    ]
    assert answers == [201, 409, 409]  # one open request at a time; each try counts
    flood = limited.post(url, json={"priority": "HIGH"}, headers=alpha.auth("ann"))
    throttled(flood)
    assert flood.headers["RateLimit-Limit"] == "3"
    # Another student, and Ann's tutor, are not affected.
    assert limited.post(url, json={"priority": "LOW"}, headers=alpha.auth("ben")).status_code == 201
    assert limited.post(url, json={}, headers=alpha.auth("ben")).status_code == 409
    assert (
        limited.post(f"/api/v1/sessions/{session}/start", headers=alpha.auth("tutor")).status_code
        == 409
    )  # already live: not 429


def test_withdrawing_a_help_request_does_not_use_up_the_help_limit(
    limited: TestClient[Litestar],
    alpha: Centre,
) -> None:
    """Raise, withdraw, raise again: only the raises count (3 a minute here), so a student who
    changes her mind three times can still ask a third time, and only a fourth raise is 429."""
    session = live_session(limited, alpha, "ann")
    url = f"/api/v1/sessions/{session}/help-requests"
    for _ in range(3):
        raised = limited.post(url, json={"priority": "LOW"}, headers=alpha.auth("ann"))
        assert raised.status_code == 201, raised.text
        withdrawn = limited.post(
            f"{url}/{raised.json()['helpRequestId']}/cancel", headers=alpha.auth("ann")
        )
        assert withdrawn.status_code == 200, withdrawn.text
        # A withdrawal is counted by the general limit only (its headers say 20, not 3).
        assert withdrawn.headers["RateLimit-Limit"] == "20"
    throttled(limited.post(url, json={"priority": "LOW"}, headers=alpha.auth("ann")))


def test_a_caller_over_the_request_limit_gets_429_and_others_carry_on(
    limited: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = live_session(limited, alpha, "ann")
    statuses = [
        limited.post(f"/api/v1/sessions/{session}/start", headers=alpha.auth("tutor")).status_code
        for _ in range(25)
    ]
    # live_session used 3 of the tutor's 20; the rest of the minute answers 429.
    assert statuses.count(409) == 17 and statuses[17:] == [429] * 8
    throttled(limited.post(f"/api/v1/sessions/{session}/start", headers=alpha.auth("tutor")))
    assert (
        limited.post(
            f"/api/v1/sessions/{session}/start", headers=alpha.auth("supervisor")
        ).status_code
        == 409
    )
    # Probes are never limited.
    assert limited.get("/health").status_code == 200


def test_limits_are_settings() -> None:
    defaults = rate_limits(load(RateLimitSettings, {}))
    assert [(limit.name, limit.count, limit.per) for limit in defaults] == [
        ("help-requests", 5, "minute"),
        ("requests", 600, "minute"),
    ]
    assert (
        rate_limits(
            load(
                RateLimitSettings,
                {"TUTORPULSE_RATE_LIMIT": "off", "TUTORPULSE_HELP_RATE_LIMIT": "off"},
            )
        )
        == []
    )
    with pytest.raises(ValueError, match="TUTORPULSE_RATE_LIMIT"):
        load(RateLimitSettings, {"TUTORPULSE_RATE_LIMIT": "lots"})


def test_each_answer_says_how_many_requests_are_left_in_the_window(
    limited: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = live_session(limited, alpha, "ann")  # 3 of the tutor's 20
    left = [
        limited.post(f"/api/v1/sessions/{session}/start", headers=alpha.auth("tutor"))
        for _ in range(18)
    ]
    assert [int(r.headers["RateLimit-Remaining"]) for r in left[:-1]] == list(range(16, -1, -1))
    assert left[-1].status_code == 429 and left[-1].headers["RateLimit-Remaining"] == "0"
    assert left[0].headers["RateLimit-Policy"] == "20; w=60"
    assert 1 <= int(left[0].headers["RateLimit-Reset"]) <= 60
