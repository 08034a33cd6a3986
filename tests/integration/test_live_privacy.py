"""Personal texts over the live gateway (real uvicorn, websockets, nats-server, SQLite): the
read models hold them sealed, the frames carry them opened for the viewer's centre, an erasure
reaches an open Control Center as "[erased]" within the key cache's seconds without a reload,
and an erased person's token stops working."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from services.command.commands.classes import AddClassMember, CreateClass
from services.live_gateway.app import UNAUTHORIZED, create_app
from services.live_gateway.hub import Settings
from services.live_gateway.settings import GatewaySettings
from shared import events
from shared.eventstore import EventStoreSettings
from shared.privacy import ERASED, FieldCipher, KeyStore, open_key_store
from shared.privacy.fields import seal_event
from shared.privacy.settings import PrivacySettings
from shared.readmodels.documents import PERSON
from shared.readmodels.projector import Change, apply_all
from shared.readmodels.views import apply_merge_patch
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, EMPTY_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.integration.test_live_gateway import Demo, actor, connect, listener, receive, subscribe
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration
KEY_CACHE_SECONDS = 0.5
"""How long the gateway's process uses a key (and a "not erased") before reading it again."""
RESYNC_SECONDS = 0.3
WAIT = 10.0
"""The longest any condition is waited for before the test fails."""


class SealedDemo(Demo):
    """The demo centre with every personal text sealed as the command service seals it (with
    that service's key store, in the event store's database), projected into a read store."""

    def __init__(self, folder: Path) -> None:
        self.event_store = load(
            EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")}
        )
        self.keys = open_key_store(
            "command", self.event_store, load(PrivacySettings), dev_mode=False
        )
        self.cipher = FieldCipher(self.keys)
        super().__init__(folder)

    def project(self) -> list[Change]:
        notifications = self.centres.recorder.select_notifications(self.position + 1, 100_000)
        self.position = notifications[-1].id if notifications else self.position
        return apply_all(
            self.store,
            [(seal_event(events.decode(n.state), self.cipher), n.id) for n in notifications],
        )

    def erase(self, handle: str) -> UUID:
        """A centre admin erases the person (in the command service's process)."""
        person = demo_person(handle).id
        self.keys.destroy(
            DEMO_CENTRE, person, erased_by=demo_person("sarah").id, reason="the parent asked"
        )
        return person

    def close(self) -> None:
        super().close()
        self.keys.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[SealedDemo]:
    demo = SealedDemo(tmp_path)
    yield demo
    demo.close()


@dataclass(frozen=True)
class Gateway:
    url: str
    keys: KeyStore
    """The gateway's own key store."""

    @property
    def http(self) -> str:
        return self.url.replace("ws://", "http://").removesuffix("/live")


@contextlib.asynccontextmanager
async def gateway(demo: SealedDemo, nats: str) -> AsyncIterator[Gateway]:
    """The gateway as its process runs it: its own key store on the event store's database,
    which it closes when it stops; the periodic check every RESYNC_SECONDS."""
    environment = {
        **os.environ,
        "TUTORPULSE_SQLITE_PATH": str(demo.event_store.sqlite_path),
        "TUTORPULSE_PRIVACY_KEY_CACHE_SECONDS": str(KEY_CACHE_SECONDS),
    }
    settings = load(GatewaySettings, environment)
    keys = open_key_store("live_gateway", settings.event_store, settings.privacy, dev_mode=False)
    app = create_app(
        demo.store,
        nats,
        Settings(resync_seconds=RESYNC_SECONDS),
        gateway=settings,
        keys=keys,
        own_keys=True,
    )
    sock = listener()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws_ping_interval=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started or app.state.hub.nats is None:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    try:
        yield Gateway(f"ws://127.0.0.1:{sock.getsockname()[1]}/live", keys)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class Copy:
    """A client's copy of one topic, kept by its snapshots and merge patches, and every raw
    frame received for it."""

    def __init__(self, socket: ClientConnection, topic: str) -> None:
        self.socket, self.topic = socket, topic
        self.data: dict[str, Any] = {}
        self.frames: list[str] = []

    async def follow(self) -> None:
        await self.socket.send(json.dumps({"type": "subscribe", "topic": self.topic}))
        await self.next()

    async def next(self) -> None:
        """Take messages up to the next one for the topic."""
        while True:
            raw = await asyncio.wait_for(self.socket.recv(), WAIT)
            assert isinstance(raw, str)
            message = json.loads(raw)
            if message.get("topic") != self.topic:
                continue
            self.frames.append(raw)
            if message["type"] == "snapshot":
                self.data = message["data"]
            elif message["type"] == "delta":
                self.data = apply_merge_patch(self.data, message["patch"])
            return

    async def until(self, condition: Any) -> None:
        """Take messages until ``condition(data)`` holds (at most WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while not condition(self.data):
            assert time.monotonic() < deadline, f"not reached within {WAIT} s: {self.data}"
            await self.next()

    def students(self) -> dict[str, dict[str, Any]]:
        return {row["studentId"]: row for row in self.data["students"]}


async def test_a_tutor_sees_names_in_plain_text_then_erased_without_a_reload(
    demo: SealedDemo, nats_server: NatsServer
) -> None:
    """A Control Center (whose view changes with the clock) and a class roster (which does not
    change at all: only the erasure check can resend it)."""
    michael = demo_person("michael")
    stored = demo.store.get(PERSON, str(michael.id))
    assert stored is not None and stored.doc.name.startswith("pd1."), "the store keeps it sealed"
    admin = actor("sarah")
    created = demo.centres.handle(
        admin,
        CreateClass(
            name="Year 9 Maths", subject="Maths", teacher_id=demo_person("john").id, capacity=3
        ),
    )
    class_id = UUID(created.body["classId"])
    for student in ("jane", "michael"):
        member = AddClassMember(class_id=class_id, student_id=demo_person(student).id)
        demo.centres.handle(admin, member)
    demo.project()

    async with (
        gateway(demo, nats_server.url) as gw,
        connect(gw.url, actor("john")) as socket,
        connect(gw.url, actor("john")) as second,
    ):
        roster = Copy(second, f"class:{class_id}")
        await roster.follow()
        names = {m["studentId"]: m["name"] for m in roster.data["members"]}
        assert names == {str(demo_person(s).id): demo_person(s).name for s in ("jane", "michael")}
        copy = Copy(socket, demo.live_topic)
        await copy.follow()
        before = copy.students()
        assert before[str(michael.id)]["name"] == michael.name
        assert "pd1." not in copy.frames[0] and michael.name in copy.frames[0]

        demo.erase("michael")  # no change notice, no new version of the session
        await copy.until(lambda data: any(s["name"] == ERASED for s in data["students"]))
        after = copy.students()
        assert after[str(michael.id)]["name"] == ERASED
        assert set(after) == set(before), "every student still counted"
        assert after[str(michael.id)]["attendance"] == before[str(michael.id)]["attendance"]
        others = {sid: row["name"] for sid, row in before.items() if sid != str(michael.id)}
        assert {sid: row["name"] for sid, row in after.items() if sid in others} == others
        assert michael.name not in copy.frames[-1]
        assert all("pd1." not in frame for frame in copy.frames)

        await roster.until(lambda data: any(m["name"] == ERASED for m in data["members"]))
        names = {m["studentId"]: m["name"] for m in roster.data["members"]}
        jane = demo_person("jane")
        assert names == {str(jane.id): jane.name, str(michael.id): ERASED}
        assert [json.loads(frame)["type"] for frame in roster.frames] == ["snapshot"] * 2


async def test_another_centre_never_gets_the_text_and_its_own_socket_works(
    demo: SealedDemo, nats_server: NatsServer
) -> None:
    stranger = Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id=EMPTY_CENTRE)
    async with gateway(demo, nats_server.url) as gw, connect(gw.url, stranger) as socket:
        refused = await subscribe(socket, demo.live_topic)
        assert refused["type"] == "error" and refused["status"] in (403, 404)
        assert demo_person("michael").name not in json.dumps(refused)
        catch_ups = await subscribe(socket, "catch-ups")
        assert catch_ups["type"] == "snapshot"
        assert "pd1." not in json.dumps(catch_ups) and demo_person("michael").name not in (
            json.dumps(catch_ups)
        )


async def test_an_erased_persons_socket_is_closed_and_their_token_refused(
    demo: SealedDemo, nats_server: NatsServer
) -> None:
    async with gateway(demo, nats_server.url) as gw:
        url = gw.url
        async with connect(url, actor("michael")) as theirs, connect(url, actor("john")) as johns:
            assert (await subscribe(theirs, "notifications"))["type"] == "snapshot"
            assert (await subscribe(johns, "my-day"))["type"] == "snapshot"
            demo.erase("michael")
            with pytest.raises(websockets.ConnectionClosed):
                while True:  # pings and deltas until the periodic check closes it
                    await asyncio.wait_for(theirs.recv(), WAIT)
            assert theirs.close_code == UNAUTHORIZED
            assert theirs.close_reason is not None and "erased" in theirs.close_reason
            await johns.send('{"type":"ping"}')
            assert await receive(johns) == {"type": "pong"}, "no one else is closed"

        token = mint(actor("michael"))
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None
        ) as again:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(again.recv(), WAIT)
            assert again.close_code == UNAUTHORIZED


async def test_ready_reports_a_key_store_that_cannot_be_read(
    demo: SealedDemo, nats_server: NatsServer
) -> None:
    async with gateway(demo, nats_server.url) as gw, httpx.AsyncClient(base_url=gw.http) as http:
        assert (await http.get("/ready")).status_code == 200
        gw.keys.close()  # as when its database goes away
        answer = await http.get("/ready")
        assert answer.status_code == 503 and "key store" in answer.json()["reason"]
