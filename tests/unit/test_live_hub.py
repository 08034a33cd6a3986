"""The gateway's hub without a network: bounded queues, resync, NATS subscription refcounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.live_gateway.hub import Hub, Settings
from services.projections.projector import apply_all
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.readside import demo_events, read_store


class FakeNats:
    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []

    async def subscribe(self, subject: str, cb: Any) -> Any:
        self.subscribed.append(subject)
        nats = self

        class Subscription:
            async def unsubscribe(self) -> None:
                nats.unsubscribed.append(subject)

        return Subscription()


def john() -> Actor:
    person = demo_person("john")
    return Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    store = read_store(tmp_path)
    apply_all(store, demo_events())
    return Hub(store, FakeNats(), Settings(queue=3, ping_seconds=15, resync_seconds=5))  # type: ignore[arg-type]


def live_session() -> str:
    return next(f"session:{e.session_id}" for e, _ in demo_events()  # type: ignore[attr-defined]
                if e.type_name == "SessionStarted")


async def test_a_client_that_stops_reading_costs_a_bounded_queue_then_gets_a_snapshot(hub: Hub) -> None:
    connection = hub.open(john())
    await hub.subscribe(connection, live_session())
    await hub.subscribe(connection, "my-day")
    for _ in range(50):
        connection.offer({"type": "delta", "topic": "my-day", "version": 1, "patch": {}})
        assert connection.outbox.qsize() <= 3
    assert connection.stale == {live_session(), "my-day"}
    while not connection.outbox.empty():
        connection.outbox.get_nowait()
    await hub.refresh(connection, "my-day")
    message = connection.outbox.get_nowait()
    assert message["type"] == "snapshot" and message["topic"] == "my-day"
    assert "my-day" not in connection.stale


async def test_nothing_is_sent_when_nothing_changed(hub: Hub) -> None:
    person = demo_person("maria")  # her day has no waiting help requests, so no ticking timers
    connection = hub.open(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))
    await hub.subscribe(connection, "my-day")
    assert connection.outbox.get_nowait()["type"] == "snapshot"
    await hub.refresh(connection, "my-day")
    assert connection.outbox.empty()


async def test_nats_subscriptions_follow_the_last_subscriber(hub: Hub) -> None:
    nats: FakeNats = hub.nc  # type: ignore[assignment]
    first, second = hub.open(john()), hub.open(john())
    await hub.subscribe(first, live_session())
    await hub.subscribe(second, live_session())
    assert len(nats.subscribed) == 1 and len(hub.nats_subjects) == 1
    await hub.close(first)
    assert nats.unsubscribed == []
    await hub.close(second)
    assert nats.unsubscribed == nats.subscribed and hub.nats_subjects == set()
