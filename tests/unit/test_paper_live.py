"""Paper handed in reaches the tutor live: scanning a student's sheet changes the session's
document (the Control Center's "paper handed in") and the tutor's (My Day's marking queue), and
the gateway turns the projection's change notices into deltas on the topics the tutor follows,
as for any other change; handing it back takes it off the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from services.live_gateway.hub import Hub, Settings
from shared import events as ev
from shared.readmodels.deltas import notice_for
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.views import apply_merge_patch
from shared.tenancy import Actor, Role
from tests.readside import read_store
from tests.support.paper_history import CENTRE, Paper, paper_day
from tests.unit.test_live_hub import FakeNats, drain


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[Hub, Paper]]:
    """The demo day projected up to the first scan; the hub following nothing yet."""
    day = paper_day()
    store: ReadStore = read_store(tmp_path)
    first = day.position(ev.PaperUploaded)
    apply_all(store, [(e, n) for e, n in day.history if n < first])
    hub = Hub(store, Settings(queue=50, resync_seconds=3600, max_topics=5))
    await hub.start(FakeNats())
    yield hub, day
    await hub.stop()
    store.close()


async def project(hub: Hub, items: list[tuple[ev.Event, int]]) -> None:
    """Apply the events and ring their notices, as the projection service does."""
    assert isinstance(hub.nats, FakeNats)
    for change in apply_all(hub.store, items):
        await hub.nats.ring(*notice_for(change))


def latest(messages: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["topic"] == topic]


async def test_the_tutor_sees_paper_handed_in_and_marked_live(live: tuple[Hub, Paper]) -> None:
    hub, day = live
    tutor = Actor(user_id=day.tutor_id or day.marked, role=Role.TEACHER, centre_id=CENTRE)
    connection = hub.open(tutor)
    session_topic = f"session:{day.session_id}"
    await hub.subscribe(connection, session_topic)
    await hub.subscribe(connection, "my-day")
    snapshots = {m["topic"]: m for m in drain(connection)}
    assert snapshots[session_topic]["data"]["paperHandedIn"] == 0
    assert snapshots["my-day"]["data"]["paperToMark"] == []

    handed_back = day.position(ev.PaperHandedBack)
    await project(hub, [(e, n) for e, n in day.history if n < handed_back])
    messages = drain(connection)
    state = {topic: dict(snapshot["data"]) for topic, snapshot in snapshots.items()}
    for message in messages:
        assert message["type"] == "delta"
        state[message["topic"]] = apply_merge_patch(state[message["topic"]], message["patch"])
    assert latest(messages, session_topic) and latest(messages, "my-day")
    assert state[session_topic]["paperHandedIn"] == 1
    jane = next(s for s in state[session_topic]["students"] if s["paper"]["handedIn"])
    assert jane["paper"]["lastUploadId"] == str(day.marked)
    queue = {p["uploadId"]: p["status"] for p in state["my-day"]["paperToMark"]}
    assert queue[str(day.marked)] == "MARKING"

    await project(hub, [(e, n) for e, n in day.history if n >= handed_back])
    for message in drain(connection):
        state[message["topic"]] = apply_merge_patch(state[message["topic"]], message["patch"])
    assert str(day.marked) not in {p["uploadId"] for p in state["my-day"]["paperToMark"]}
    await hub.subscribe(connection, "my-day")
    (fresh,) = drain(connection)
    assert fresh["data"] == state["my-day"]
