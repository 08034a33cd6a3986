"""Tutors following sessions and My Day over websockets (real uvicorn, nats-server, SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import uvicorn
import websockets
from nats.aio.client import Client

from services.command.application import AttendanceMark, TutoringCentres
from services.command.seed import seed
from services.live_gateway.app import IDLE, UNAUTHORIZED, create_app
from services.live_gateway.hub import Settings
from services.projections.deltas import notice_for
from services.projections.projector import apply_all
from services.projections.store import ReadStore
from services.projections.views import apply_merge_patch
from shared import events
from shared.events import AttendanceStatus
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, EMPTY_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.readside import read_store
from tests.support.servers import NatsServer, free_port

pytestmark = pytest.mark.integration
LIVE = "Intro to Programming - Live Q&A"


def actor(handle: str, centre: str = DEMO_CENTRE) -> Actor:
    person = demo_person(handle)
    return Actor(user_id=person.id, role=person.role, centre_id=centre)


class Demo:
    """The demo centre, projected, plus a way to make more happen."""

    def __init__(self, folder: Path) -> None:
        self.centres = TutoringCentres({"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
        self.sessions = seed(self.centres)
        self.store = read_store(folder)
        self.position = 0
        self.project()

    def project(self) -> list[Any]:
        notifications = self.centres.recorder.select_notifications(self.position, 100_000,
                                                                   inclusive_of_start=False)
        self.position = notifications[-1].id if notifications else self.position
        return apply_all(self.store, [(events.decode(n.state), n.id) for n in notifications])

    async def mark(self, nc: Client | None, handle: str, status: AttendanceStatus) -> None:
        self.centres.mark_attendance(actor("john"), self.sessions[LIVE],
                                     [AttendanceMark(demo_person(handle).id, status)])
        for change in self.project():
            if nc is not None and change.before != change.after:
                await nc.publish(*notice_for(change))


@contextlib.asynccontextmanager
async def gateway(store: ReadStore, url: str, **settings: Any) -> AsyncIterator[str]:
    client = await nats.connect(url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, client, Settings(**settings)),
                                           host="127.0.0.1", port=port, log_config=None,
                                           ws_ping_interval=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/live"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await client.close()


async def receive(socket: Any, timeout: float = 5) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]


async def subscribe(socket: Any, topic: str, **extra: Any) -> dict[str, Any]:
    await socket.send(json.dumps({"type": "subscribe", "topic": topic, **extra}))
    return await receive(socket)


def connect(url: str, who: Actor) -> Any:
    return websockets.connect(f"{url}?token={mint(who)}", ping_interval=None)


def without_clock(view: dict[str, Any]) -> dict[str, Any]:
    """Views minus what depends on the second they are read at; nulls are absent in patches."""
    text = json.dumps(view)
    clean = json.loads(text)

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()
                    if v is not None and not k.endswith("Seconds") and k != "timing"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(clean)  # type: ignore[no-any-return]


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return Demo(tmp_path)


async def test_a_tutor_gets_a_snapshot_then_deltas_that_keep_it_true(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    session = f"session:{demo.sessions[LIVE]}"
    async with gateway(demo.store, nats_server.url) as url, connect(url, actor("john")) as socket:
        snapshot = await subscribe(socket, session)
        assert snapshot["type"] == "snapshot" and snapshot["data"]["status"] == "LIVE"
        day = await subscribe(socket, "my-day")
        assert day["type"] == "snapshot" and len(day["data"]["sessions"]) == 3

        await demo.mark(nc, "michael", AttendanceStatus.ABSENT)
        deltas = [await receive(socket), await receive(socket)]
        by_topic = {d["topic"]: d for d in deltas}
        assert set(by_topic) == {session, "my-day"}
        delta = by_topic[session]
        assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
        patched = apply_merge_patch(snapshot["data"], delta["patch"])
        fresh = await subscribe(socket, session)
        assert without_clock(patched) == without_clock(fresh["data"])
        michael = next(s for s in patched["students"] if s["name"] == "Michael Lee")
        assert michael["attendance"] == "ABSENT" and len(michael["catchUps"]) == 1


async def test_other_tutors_and_other_centres_are_refused_and_the_socket_stays_usable(
    demo: Demo, nats_server: NatsServer
) -> None:
    session = f"session:{demo.sessions[LIVE]}"
    async with gateway(demo.store, nats_server.url) as url:
        async with connect(url, actor("maria")) as socket:
            refused = await subscribe(socket, session)
            assert (refused["type"], refused["status"]) == ("error", 403)
            assert (await subscribe(socket, "my-day"))["type"] == "snapshot"
            assert (await subscribe(socket, "nonsense"))["status"] == 400
        async with connect(url, actor("sarah", EMPTY_CENTRE)) as socket:
            assert (await subscribe(socket, session))["status"] == 404
        async with websockets.connect(url, ping_interval=None) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await receive(socket)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == UNAUTHORIZED


async def test_reconnecting_with_the_last_version_seen(demo: Demo, nats_server: NatsServer, nc: Client) -> None:
    session = f"session:{demo.sessions[LIVE]}"
    async with gateway(demo.store, nats_server.url) as url:
        async with connect(url, actor("john")) as socket:
            version = (await subscribe(socket, session))["version"]
        async with connect(url, actor("john")) as socket:
            current = await subscribe(socket, session, lastVersion=version)
            assert current == {"type": "subscribed", "topic": session, "version": version}
        await demo.mark(nc, "jane", AttendanceStatus.LATE)  # missed while away
        async with connect(url, actor("john")) as socket:
            missed = await subscribe(socket, session, lastVersion=version)
            assert missed["type"] == "snapshot" and missed["version"] > version


async def test_a_lost_change_notice_is_caught_by_the_periodic_check(demo: Demo, nats_server: NatsServer) -> None:
    session = f"session:{demo.sessions[LIVE]}"
    async with gateway(demo.store, nats_server.url, resync_seconds=0.3) as url, \
            connect(url, actor("john")) as socket:
        before = await subscribe(socket, session)
        await demo.mark(None, "alex", AttendanceStatus.LATE)  # committed, but no notice sent
        delta = await receive(socket)
        assert delta["type"] == "delta" and delta["version"] > before["version"]


async def test_two_gateway_replicas_each_deliver_to_their_own_clients(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    session = f"session:{demo.sessions[LIVE]}"
    async with gateway(demo.store, nats_server.url) as first, gateway(demo.store, nats_server.url) as second:
        async with connect(first, actor("john")) as one, connect(second, actor("david")) as two:
            await subscribe(one, session)
            await subscribe(two, session)
            await demo.mark(nc, "alex", AttendanceStatus.ABSENT)
            assert (await receive(one))["type"] == "delta"
            assert (await receive(two))["type"] == "delta"


async def test_a_silent_client_is_closed(demo: Demo, nats_server: NatsServer) -> None:
    async with gateway(demo.store, nats_server.url, ping_seconds=0.2) as url, \
            connect(url, actor("john")) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == IDLE
