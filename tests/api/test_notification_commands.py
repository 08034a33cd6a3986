"""Marking one's own notifications read, choosing their channels, and a centre's channels."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4, uuid5

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from shared import events as ev
from tests.api.conformance import checked
from tests.builders import Centre


@pytest.fixture
def client(centres: TutoringCentres) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(centres)) as test_client:
        yield checked(test_client)


def recorded(centres: TutoringCentres) -> list[ev.Event]:
    return [ev.decode(n.state) for n in centres.recorder.select_notifications(1, 100_000)]


def test_a_person_marks_their_own_notifications_read(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    ids = [str(uuid4()), str(uuid4())]
    answer = client.post(
        "/api/v1/notifications/read",
        json={"notificationIds": [*ids, ids[0]]},
        headers=alpha.auth("ann"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["personId"] == str(alpha["ann"].user_id) and body["marked"] == 2
    assert body["position"] > 0
    (event,) = [e for e in recorded(centres) if isinstance(e, ev.NotificationsRead)]
    assert event.person_id == alpha["ann"].user_id
    assert event.aggregate_id == uuid5(alpha["ann"].user_id, "inbox")
    assert [str(i) for i in event.notification_ids] == ids


def test_all_read_up_to_now_and_again_changes_nothing(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    first = client.post(
        "/api/v1/notifications/read-all",
        json={"upTo": "2026-12-03T10:00:00+11:00"},
        headers=alpha.auth("parent"),
    )
    assert first.status_code == 200 and first.json()["changed"] is True
    assert first.json()["upTo"] == "2026-12-03T10:00:00+11:00"
    again = client.post(
        "/api/v1/notifications/read-all",
        json={"upTo": "2026-12-02T10:00:00Z"},
        headers=alpha.auth("parent"),
    )
    assert again.json()["changed"] is False
    by_default = client.post("/api/v1/notifications/read-all", json={}, headers=alpha.auth("ann"))
    assert by_default.status_code == 200 and by_default.json()["changed"] is True


def test_preferences_name_types_and_channels(client: TestClient[Litestar], alpha: Centre) -> None:
    answer = client.post(
        "/api/v1/notifications/preferences",
        json={"channels": {"SESSION_REMINDER": ["EMAIL", "WEBHOOK"], "HOMEWORK_OVERDUE": []}},
        headers=alpha.auth("tutor"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["channels"] == {"SESSION_REMINDER": ["EMAIL", "WEBHOOK"]}
    bad = client.post(
        "/api/v1/notifications/preferences",
        json={"channels": {"SESSION_REMINDER": ["PIGEON"]}},
        headers=alpha.auth("tutor"),
    )
    assert bad.status_code == 422


def test_bad_marks_are_422_problems(client: TestClient[Litestar], alpha: Centre) -> None:
    bodies: tuple[dict[str, object], ...] = (
        {"notificationIds": []},
        {"notificationIds": ["not-a-uuid"]},
        {"notificationIds": [str(uuid4())], "personId": str(alpha["tutor"].user_id)},
        {"notificationIds": [str(uuid4()) for _ in range(201)]},
    )
    for body in bodies:
        answer = client.post("/api/v1/notifications/read", json=body, headers=alpha.auth("ann"))
        assert answer.status_code == 422, body
        assert answer.headers["content-type"].startswith("application/problem+json")
    naive = client.post(
        "/api/v1/notifications/read-all",
        json={"upTo": "2026-12-03T10:00:00"},
        headers=alpha.auth("ann"),
    )
    assert naive.status_code == 422


def test_a_centre_admin_sets_the_channels_and_the_secret_is_never_answered(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    secret = "s3cret-s3cret-s3cret"
    path = "/api/v1/centres/alpha/notification-channels"
    answer = client.post(
        path,
        json={
            "webhookUrl": "https://hooks.example.org/tp",
            "webhookSecret": secret,
            "emailEnabled": True,
        },
        headers=alpha.auth("admin"),
    )
    assert answer.status_code == 200, answer.text
    assert secret not in answer.text
    assert answer.json() | {"position": 0} == {
        "centreId": "alpha",
        "webhookUrl": "https://hooks.example.org/tp",
        "webhookSecretSet": True,
        "emailEnabled": True,
        "changed": True,
        "position": 0,
    }
    same_url = client.post(
        path,
        json={"webhookUrl": "https://hooks.example.org/tp", "emailEnabled": True},
        headers=alpha.auth("admin"),
    )
    assert same_url.json()["changed"] is False  # the secret is kept
    (event,) = [e for e in recorded(centres) if isinstance(e, ev.NotificationChannelsConfigured)]
    assert event.webhook_secret == secret


def test_channels_are_refused_for_bad_values_and_other_roles(
    client: TestClient[Litestar], alpha: Centre, beta: Centre
) -> None:
    path = "/api/v1/centres/alpha/notification-channels"
    for body, field in (
        ({"webhookUrl": "ftp://x.example", "webhookSecret": "a" * 16}, "webhookUrl"),
        ({"webhookUrl": "https://x.example"}, "webhookSecret"),
        ({"webhookUrl": "https://x.example", "webhookSecret": "short"}, "webhookSecret"),
    ):
        answer = client.post(path, json=body, headers=alpha.auth("admin"))
        assert answer.status_code == 422, body
        assert field in answer.text
    assert client.post(path, json={}, headers=alpha.auth("supervisor")).status_code == 403
    assert client.post(path, json={}, headers=beta.auth("admin")).status_code == 404
