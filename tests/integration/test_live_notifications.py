"""The ``notifications`` topic over a real websocket: a cancelled session reaches each of its
students' and parents' own inbox live, and nobody else's."""

from __future__ import annotations

from uuid import UUID

import pytest
from nats.aio.client import Client

from services.command.commands.sessions import CancelSession
from shared.events import SessionStatus
from shared.readmodels.deltas import notice_for
from shared.readmodels.documents import SESSION
from shared.readmodels.views import apply_merge_patch
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.integration.test_live_gateway import (
    Demo,
    actor,
    connect,
    demo,  # noqa: F401  (the fixture)
    gateway,
    receive,
    subscribe,
)
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration


async def test_a_cancellation_reaches_the_students_inbox_live_and_not_the_tutors(
    demo: Demo,  # noqa: F811
    nats_server: NatsServer,
    nc: Client,
) -> None:
    jane = str(demo_person("jane").id)
    session = next(
        s.doc
        for s in demo.store.docs(SESSION)
        if s.doc.status is SessionStatus.SCHEDULED
        and jane in s.doc.students
        and s.doc.students[jane].enrolled
    )
    tutor = Actor(user_id=UUID(session.tutor_id), role=Role.TEACHER, centre_id=DEMO_CENTRE)
    async with (
        gateway(demo, nats_server.url) as gw,
        connect(gw.url, actor("jane")) as janes,
        connect(gw.url, tutor) as tutors,
    ):
        before = await subscribe(janes, "notifications")
        assert before["type"] == "snapshot" and before["data"]["unread"] == 0
        assert (await subscribe(tutors, "notifications"))["type"] == "snapshot"

        demo.centres.handle(tutor, CancelSession(session_id=UUID(session.session_id), reason="Ill"))
        for change in demo.project():
            await nc.publish(*notice_for(change))
        await nc.flush()

        delta = await receive(janes)
        assert delta["type"] == "delta" and delta["topic"] == "notifications"
        inbox = apply_merge_patch(before["data"], delta["patch"])
        assert inbox["unread"] == 1
        (item,) = inbox["items"]
        assert item["type"] == "SESSION_CANCELLED" and item["body"].endswith("is cancelled: Ill")
        with pytest.raises(TimeoutError):  # the tutor is told nothing of their own cancellation
            await receive(tutors, timeout=0.5)
