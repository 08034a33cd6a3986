"""The gateway's ``notifications`` topic: a person follows their own inbox, and only theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import msgspec
import pytest_asyncio

from services.live_gateway.hub import Connection, Hub, ResyncStale, Settings, wire
from shared import events as ev
from shared.readmodels.deltas import notice_for
from shared.readmodels.documents import SESSION
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.views import apply_merge_patch
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.readside import demo_events, read_store
from tests.unit.test_live_hub import FakeNats


def person(handle: str) -> Actor:
    who = demo_person(handle)
    return Actor(user_id=who.id, role=who.role, centre_id=DEMO_CENTRE)


def drain(connection: Connection) -> list[dict[str, object]]:
    messages = []
    while not connection.outbox.empty():
        item = connection.outbox.get_nowait()
        assert not isinstance(item, ResyncStale)
        messages.append(msgspec.json.decode(wire(item).text))
    return messages


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    store = read_store(tmp_path)
    apply_all(store, demo_events())
    hub = Hub(store, Settings(queue=10, resync_seconds=3600, max_topics=4))
    await hub.start(FakeNats())
    yield hub
    await hub.stop()


def janes_reminder(store: ReadStore) -> ev.SessionReminderSent:
    jane = str(demo_person("jane").id)
    session = next(
        s.doc
        for s in store.docs(SESSION)
        if jane in s.doc.students and s.doc.students[jane].enrolled
    )
    with store.transaction() as tx:
        version = tx.aggregate_version(session.session_id)
    return ev.SessionReminderSent(
        centre_id=DEMO_CENTRE,
        aggregate_id=UUID(session.session_id),
        aggregate_version=version + 1,
        occurred_at=datetime(2026, 12, 3, 8, 45, tzinfo=UTC),
        actor_id=UUID(int=0),
        actor_role=Role.SYSTEM,
        session_id=UUID(session.session_id),
        starts_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        minutes_before=15,
    )


async def test_a_new_notification_reaches_its_person_as_a_delta(hub: Hub) -> None:
    jane = hub.open(person("jane"))
    await hub.subscribe(jane, "notifications")
    (snapshot,) = drain(jane)
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"] == {
        "personId": str(demo_person("jane").id),
        "unread": 0,
        "items": [],
        "next": None,
    }
    assert isinstance(hub.nats, FakeNats)
    assert hub.nats.active == {f"tp.delta.{DEMO_CENTRE}.inbox.{demo_person('jane').id}"}

    for change in apply_all(hub.store, [(janes_reminder(hub.store), 100_000)]):
        await hub.nats.ring(*notice_for(change))
    (delta,) = drain(jane)
    assert delta["type"] == "delta"
    view = apply_merge_patch(snapshot["data"], delta["patch"])
    assert view["unread"] == 1
    assert [i["type"] for i in view["items"]] == ["SESSION_REMINDER"]


async def test_nobody_hears_of_another_persons_notifications(hub: Hub) -> None:
    emily = hub.open(person("emily"))  # in no session, told nothing
    await hub.subscribe(emily, "notifications")
    drain(emily)
    assert isinstance(hub.nats, FakeNats)
    for change in apply_all(hub.store, [(janes_reminder(hub.store), 100_000)]):
        await hub.nats.ring(*notice_for(change))
    assert drain(emily) == []


async def test_the_topic_names_no_person(hub: Hub) -> None:
    jane = hub.open(person("jane"))
    await hub.subscribe(jane, f"notifications:{demo_person('robert').id}")
    (refused,) = drain(jane)
    assert refused["type"] == "error" and refused["status"] == 400


def test_the_live_client_prints_a_line_on_the_inbox() -> None:
    from services.live_gateway.client import describe

    assert describe({"personId": "p", "unread": 0, "items": [], "next": None}) == (
        "0 unread notifications; newest: nothing yet"
    )
    item = {"title": "Fractions clinic starts in 15 minutes"}
    assert describe({"personId": "p", "unread": 2, "items": [item], "next": None}) == (
        "2 unread notifications; newest: Fractions clinic starts in 15 minutes"
    )
