"""What a timer records reaches the tutor live: an escalation is a delta of the Control Center
the tutor follows, and it orders requests within a priority, never above a more urgent one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio

from services.live_gateway.hub import Hub, Settings
from shared import events
from shared.readmodels.deltas import notice_for
from shared.readmodels.projector import apply_all
from shared.readmodels.times import iso
from shared.readmodels.views import apply_merge_patch
from shared.tenancy.roles import SYSTEM_ACTOR_ID, Role
from tests.readside import read_store
from tests.unit.test_live_hub import (
    EVENTS,
    HELP_REQUESTS,
    FakeNats,
    drain,
    live_session,
    nats_of,
    person,
    raise_help_requests,
)


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """The demo centre without its last two help requests, a gateway hub over it."""
    store = read_store(tmp_path)
    apply_all(store, EVENTS[:-HELP_REQUESTS])
    hub = Hub(store, Settings(queue=3, resync_seconds=3600, max_topics=2))
    await hub.start(FakeNats())
    yield hub
    await hub.stop()
    store.close()


async def test_an_escalation_is_pushed_to_the_tutor_following_the_session(hub: Hub) -> None:
    await raise_help_requests(hub)
    connection = hub.open(person("john"))
    await hub.subscribe(connection, live_session())
    (snapshot,) = drain(connection)
    raised = [e for e, _ in EVENTS[-HELP_REQUESTS:] if isinstance(e, events.HelpRequestRaised)]
    request = raised[-1]  # the later of the two
    escalation = events.HelpRequestEscalated(
        centre_id=request.centre_id,
        aggregate_id=request.aggregate_id,
        aggregate_version=request.aggregate_version + 1,
        occurred_at=request.sla_due_at + timedelta(seconds=1),
        actor_id=SYSTEM_ACTOR_ID,
        actor_role=Role.SYSTEM,
        session_id=request.session_id,
        student_id=request.student_id,
        help_request_id=request.help_request_id,
        priority=request.priority,
        sla_due_at=request.sla_due_at,
    )
    last_position = max(position for _, position in EVENTS)
    for change in apply_all(hub.store, [(escalation, last_position + 1)]):
        await nats_of(hub).ring(*notice_for(change))

    (delta,) = drain(connection)
    assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
    patched = apply_merge_patch(snapshot["data"], delta["patch"])
    rows = {row["studentId"]: row for row in patched["students"]}
    shown = rows[str(request.student_id)]["openHelpRequest"]
    assert shown["escalatedAt"] == iso(escalation.occurred_at)
    # Escalation orders within a priority only: the URGENT request still comes first.
    waiting = [r["studentId"] for r in patched["students"] if r["openHelpRequest"]]
    assert [e.priority for e in raised] == [events.HelpPriority.URGENT, events.HelpPriority.HIGH]
    assert waiting == [str(raised[0].student_id), str(request.student_id)]
