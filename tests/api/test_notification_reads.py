"""A person's inbox from the query API: only their own, newest first, paged, with the unread
count (the demo centre, with a reminder and a cancellation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid5

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.query.app import create_app
from shared import events as ev
from shared.events.notifications import (
    NotificationChannel,
    NotificationChannelsConfigured,
    NotificationPreferencesSet,
    NotificationsRead,
)
from shared.notifications import NotificationType
from shared.readmodels.documents import SESSION, Session
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.identity import centre_aggregate_id
from shared.tenancy.tokens import mint
from tests.api.conformance import checked
from tests.readside import demo_events, read_store

SYSTEM = UUID(int=0)


def auth(handle: str, centre: str = DEMO_CENTRE) -> dict[str, str]:
    person = demo_person(handle)
    actor = Actor(user_id=person.id, role=person.role, centre_id=centre)
    return {"Authorization": f"Bearer {mint(actor)}"}


def janes_session(store: ReadStore) -> Session:
    jane = str(demo_person("jane").id)
    return next(
        s.doc
        for s in store.docs(SESSION)
        if jane in s.doc.students and s.doc.students[jane].enrolled
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReadStore]:
    store = read_store(tmp_path)
    history = list(demo_events())
    apply_all(store, history)
    session = janes_session(store)
    with store.transaction() as tx:
        version = tx.aggregate_version(session.session_id)
    envelope = {
        "centre_id": DEMO_CENTRE,
        "aggregate_id": UUID(session.session_id),
        "occurred_at": datetime(2026, 12, 3, 8, 45, tzinfo=UTC),
        "actor_id": SYSTEM,
        "actor_role": Role.SYSTEM,
        "session_id": UUID(session.session_id),
    }
    reminder = ev.SessionReminderSent(
        **envelope,  # type: ignore[arg-type]
        aggregate_version=version + 1,
        starts_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        minutes_before=15,
    )
    cancelled = ev.SessionCancelled(
        **envelope | {"occurred_at": datetime(2026, 12, 3, 8, 50, tzinfo=UTC)},  # type: ignore[arg-type]
        aggregate_version=version + 2,
        reason="Tutor unwell",
    )
    last = history[-1][1]
    apply_all(store, [(reminder, last + 1), (cancelled, last + 2)])
    store.advance_watermark(last + 2)
    yield store
    store.close()


@pytest.fixture
def client(store: ReadStore) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(store)) as test_client:
        yield checked(test_client)


def test_a_student_reads_their_own_notifications_newest_first(
    client: TestClient[Litestar],
) -> None:
    answer = client.get("/api/v1/notifications", headers=auth("jane"))
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["personId"] == str(demo_person("jane").id)
    assert [i["type"] for i in data["items"]] == ["SESSION_CANCELLED", "SESSION_REMINDER"]
    assert data["unread"] == 2 and data["next"] is None
    assert data["items"][0]["body"].endswith("is cancelled: Tutor unwell")
    assert "X-Tutorpulse-Watermark" in answer.headers


def test_pages_follow_the_cursor(client: TestClient[Litestar]) -> None:
    first = client.get("/api/v1/notifications?limit=1", headers=auth("robert")).json()["data"]
    assert [i["type"] for i in first["items"]] == ["SESSION_CANCELLED"]
    second = client.get(
        f"/api/v1/notifications?limit=1&cursor={first['next']}", headers=auth("robert")
    ).json()["data"]
    assert [i["type"] for i in second["items"]] == ["SESSION_REMINDER"]
    assert second["next"] is None


def test_the_tutor_is_reminded_but_not_told_of_their_own_cancellation(
    client: TestClient[Litestar], store: ReadStore
) -> None:
    tutor = janes_session(store).tutor_id
    handle = next(h for h in ("john", "maria") if str(demo_person(h).id) == tutor)
    data = client.get("/api/v1/notifications", headers=auth(handle)).json()["data"]
    assert [i["type"] for i in data["items"]] == ["SESSION_REMINDER"]


def test_the_unread_count_and_unread_filter_follow_what_was_read(
    client: TestClient[Litestar], store: ReadStore
) -> None:
    jane = demo_person("jane").id
    items = client.get("/api/v1/notifications", headers=auth("jane")).json()["data"]["items"]
    read = NotificationsRead(
        centre_id=DEMO_CENTRE,
        aggregate_id=uuid5(jane, "inbox"),
        aggregate_version=1,
        occurred_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        actor_id=jane,
        actor_role=Role.STUDENT,
        person_id=jane,
        notification_ids=[UUID(items[0]["notificationId"])],
    )
    apply_all(store, [(read, store.watermark() + 1)])
    store.advance_watermark(store.watermark() + 1)
    count = client.get("/api/v1/notifications/unread-count", headers=auth("jane"))
    assert count.json()["data"] == {"personId": str(jane), "unread": 1}
    unread = client.get("/api/v1/notifications?unread=true", headers=auth("jane")).json()
    assert [i["type"] for i in unread["data"]["items"]] == ["SESSION_REMINDER"]


def test_someone_never_told_anything_has_an_empty_inbox(client: TestClient[Litestar]) -> None:
    answer = client.get("/api/v1/notifications", headers=auth("emily"))
    assert answer.json() == {
        "version": 0,
        "data": {
            "personId": str(demo_person("emily").id),
            "unread": 0,
            "items": [],
            "next": None,
        },
    }


def test_another_centres_token_sees_nothing_of_this_centres_inbox(
    client: TestClient[Litestar],
) -> None:
    person = demo_person("jane")
    token = mint(Actor(user_id=person.id, role=person.role, centre_id="elsewhere"))
    answer = client.get("/api/v1/notifications", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json()["data"]["items"] == []


def test_a_bad_cursor_is_a_422_naming_it(client: TestClient[Litestar]) -> None:
    answer = client.get("/api/v1/notifications?cursor=nonsense", headers=auth("jane"))
    assert answer.status_code == 422
    assert answer.json()["field"] == "cursor"


def test_no_token_is_a_401(client: TestClient[Litestar]) -> None:
    assert client.get("/api/v1/notifications/unread-count").status_code == 401


def test_a_person_reads_back_their_choice_and_an_admin_the_channels_without_the_secret(
    client: TestClient[Litestar], store: ReadStore
) -> None:
    jane = demo_person("jane").id
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    secret = "never-to-be-read-back-secret"
    chosen = NotificationPreferencesSet(
        centre_id=DEMO_CENTRE,
        aggregate_id=uuid5(jane, "inbox"),
        aggregate_version=1,
        occurred_at=at,
        actor_id=jane,
        actor_role=Role.STUDENT,
        person_id=jane,
        channels={NotificationType.HOMEWORK_OVERDUE: [NotificationChannel.EMAIL]},
    )
    configured = NotificationChannelsConfigured(
        centre_id=DEMO_CENTRE,
        aggregate_id=uuid5(centre_aggregate_id(DEMO_CENTRE), "notification-channels"),
        aggregate_version=1,
        occurred_at=at,
        actor_id=demo_person("sarah").id,
        actor_role=Role.CENTER_ADMIN,
        webhook_url="https://hooks.example.org/tp",
        webhook_secret=secret,
        email_enabled=True,
    )
    position = store.watermark()
    apply_all(store, [(chosen, position + 1), (configured, position + 2)])
    store.advance_watermark(position + 2)

    mine = client.get("/api/v1/notifications/preferences", headers=auth("jane")).json()["data"]
    assert mine == {"personId": str(jane), "channels": {"HOMEWORK_OVERDUE": ["EMAIL"]}}
    answer = client.get("/api/v1/notifications/channels", headers=auth("sarah"))
    assert answer.status_code == 200 and secret not in answer.text
    assert answer.json()["data"] == {
        "centreId": DEMO_CENTRE,
        "webhookUrl": "https://hooks.example.org/tp",
        "webhookSecretSet": True,
        "emailEnabled": True,
    }
    assert client.get("/api/v1/notifications/channels", headers=auth("john")).status_code == 403
