"""Tutors following sessions and My Day over websockets (real uvicorn, nats-server, SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
import websockets
from nats.aio.client import Client
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from services.command.application import TutoringCentres
from services.command.commands.classes import AddClassMember, CreateClass
from services.command.commands.notes import WriteNote
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.seed import seed
from services.live_gateway import protocol
from services.live_gateway.app import FORBIDDEN, IDLE, UNAUTHORIZED, create_app
from services.live_gateway.hub import Frame, Hub, Settings
from services.live_gateway.protocol import BEARER_PROTOCOL, PROTOCOL
from shared import events
from shared.events import AttendanceStatus
from shared.eventstore import EventStoreSettings
from shared.readmodels.deltas import notice_for
from shared.readmodels.projector import Change, apply_all
from shared.readmodels.views import apply_merge_patch
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, EMPTY_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.readside import read_store
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration
LIVE = "Intro to Programming - Live Q&A"
ROOT = Path(__file__).resolve().parents[2]


def actor(handle: str, centre: str = DEMO_CENTRE) -> Actor:
    person = demo_person(handle)
    return Actor(user_id=person.id, role=person.role, centre_id=centre)


class Demo:
    """The demo centre, projected into a read store as the projection service would, plus a
    way to make more happen."""

    def __init__(self, folder: Path) -> None:
        self.centres = TutoringCentres(
            load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
        )
        self.sessions = seed(self.centres)
        self.store = read_store(folder)
        self.position = 0
        self.project()

    @property
    def live_topic(self) -> str:
        return f"session:{self.sessions[LIVE]}"

    def project(self) -> list[Change]:
        notifications = self.centres.recorder.select_notifications(self.position + 1, 100_000)
        self.position = notifications[-1].id if notifications else self.position
        return apply_all(self.store, [(events.decode(n.state), n.id) for n in notifications])

    async def mark(self, nc: Client | None, handle: str, status: AttendanceStatus) -> None:
        """John marks a student in the live session; ``nc=None`` loses the change notices."""
        self.centres.handle(
            actor("john"),
            MarkAttendance(
                session_id=self.sessions[LIVE],
                records=[AttendanceRecord(student_id=demo_person(handle).id, status=status)],
            ),
        )
        for change in self.project():
            if nc is not None and change.before != change.after:
                await nc.publish(*notice_for(change))
        if nc is not None:
            await nc.flush()

    def close(self) -> None:
        self.store.close()
        self.centres.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(tmp_path)
    yield demo
    demo.close()


@dataclass(frozen=True)
class Gateway:
    port: int
    hub: Hub

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/live"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listener(port: int = 0, send_buffer: int | None = None) -> socket.socket:
    """A listening socket (on a free port by default); accepted connections inherit its send
    buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


@contextlib.asynccontextmanager
async def gateway(
    demo: Demo,
    nats: str | Client,
    *,
    port: int = 0,
    send_buffer: int | None = None,
    **settings: Any,
) -> AsyncIterator[Gateway]:
    # The periodic check only where a test asks for it: it also sends the clock's changes.
    app = create_app(demo.store, nats, Settings(**{"resync_seconds": 60, **settings}))
    sock = listener(port, send_buffer)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws_ping_interval=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    # Given a URL, the gateway connects to NATS in the background (refusing websockets with
    # 1013 meanwhile): wait for it as a load balancer waits for /ready.
    while not server.started or app.state.hub.nats is None:
        if task.done():
            await task  # it could not start: say why
        await asyncio.sleep(0.01)
    try:
        yield Gateway(sock.getsockname()[1], app.state.hub)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def bearer(token: str) -> list[Subprotocol]:
    """The subprotocols a browser offers to carry its token (``services/live_gateway/web``)."""
    return [Subprotocol(PROTOCOL), Subprotocol(BEARER_PROTOCOL + token)]


def connect(url: str, who: Actor, **options: Any) -> websockets.connect:
    return websockets.connect(url, subprotocols=bearer(mint(who)), ping_interval=None, **options)


@contextlib.asynccontextmanager
async def slow_reader(demo: Demo, nats: str) -> AsyncIterator[tuple[Gateway, ClientConnection]]:
    """A gateway with small socket buffers and a queue of 4, and John's websocket on a socket
    with a small receive buffer and no compression: once the client stops reading, the
    gateway's writes soon stop too (as over a slow mobile link)."""
    with socket.socket() as small:
        small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with gateway(demo, nats, send_buffer=4096, queue=4) as gw:
            small.connect(("127.0.0.1", gw.port))
            # close_timeout: a client that leaves messages unread does not see the server's close.
            async with connect(
                gw.url, actor("john"), sock=small, max_queue=1, compression=None, close_timeout=0.1
            ) as client:
                yield gw, client


async def receive(socket: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    """The next message other than a server ping."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] != "ping":
            return message


async def subscribe(socket: ClientConnection, topic: str, **extra: Any) -> dict[str, Any]:
    await socket.send(json.dumps({"type": "subscribe", "topic": topic, **extra}))
    return await receive(socket)


async def next_change(
    socket: ClientConnection, topic: str, after: int, timeout: float = 5
) -> dict[str, Any]:
    """The next message for ``topic`` with a version above ``after`` (views also change with
    the clock alone: waiting times tick)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(socket, max(0.01, deadline - time.monotonic()))
        if message.get("topic") == topic and message.get("version", 0) > after:
            return message


def without_clock(view: dict[str, Any]) -> dict[str, Any]:
    """A view minus what depends on the second it was read at; nulls are absent in patches."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if v is not None and not k.endswith("Seconds") and k != "timing"
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    stripped: dict[str, Any] = strip(view)
    return stripped


async def eventually(condition: Callable[[], bool], failure: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.01)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_tutor_gets_a_snapshot_then_deltas_that_keep_it_true(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    session = demo.live_topic
    async with gateway(demo, nats_server.url) as gw, connect(gw.url, actor("john")) as socket:
        snapshot = await subscribe(socket, session)
        assert snapshot["type"] == "snapshot" and snapshot["data"]["status"] == "LIVE"
        day = await subscribe(socket, "my-day")
        assert day["type"] == "snapshot" and day["data"]["tutorName"] == "John Teacher"

        await demo.mark(nc, "michael", AttendanceStatus.ABSENT)
        deltas = {d["topic"]: d for d in [await receive(socket), await receive(socket)]}
        assert set(deltas) == {session, "my-day"}
        delta = deltas[session]
        assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
        patched = apply_merge_patch(snapshot["data"], delta["patch"])
        fresh = await subscribe(socket, session)
        assert fresh["type"] == "snapshot" and fresh["version"] == delta["version"]
        assert without_clock(patched) == without_clock(fresh["data"])
        michael = next(s for s in patched["students"] if s["name"] == "Michael Lee")
        assert michael["attendance"] == "ABSENT" and len(michael["catchUps"]) == 1

        await socket.send(json.dumps({"type": "unsubscribe", "topic": "my-day"}))
        assert await receive(socket) == {"type": "unsubscribed", "topic": "my-day"}
        await demo.mark(nc, "michael", AttendanceStatus.EXCUSED)
        after = await next_change(socket, session, fresh["version"])
        assert after["type"] == "delta"
        with pytest.raises(TimeoutError):  # nothing more: My Day is no longer followed
            await receive(socket, timeout=0.5)


async def test_other_tutors_and_other_centres_are_refused_and_the_socket_stays_usable(
    demo: Demo, nats_server: NatsServer
) -> None:
    session = demo.live_topic
    async with gateway(demo, nats_server.url) as gw:
        async with connect(gw.url, actor("maria")) as socket:
            refused = await subscribe(socket, session)
            assert (refused["type"], refused["topic"], refused["status"]) == ("error", session, 403)
            assert (await subscribe(socket, "my-day"))["type"] == "snapshot"
            assert (await subscribe(socket, "nonsense"))["status"] == 400
            await socket.send("not json")
            assert (await receive(socket))["status"] == 400
            await socket.send('{"type":"ping"}')
            assert await receive(socket) == {"type": "pong"}
        async with connect(gw.url, actor("sarah", EMPTY_CENTRE)) as socket:
            elsewhere = await subscribe(socket, session)
            nowhere = await subscribe(socket, "session:00000000-0000-4000-8000-000000000000")
            assert elsewhere["status"] == nowhere["status"] == 404
            assert elsewhere["detail"] == nowhere["detail"]
        await eventually(
            lambda: gw.hub.nats_subjects == set(),
            "refused and closed subscriptions left NATS subscriptions behind",
        )


async def test_a_browser_offers_its_token_as_a_subprotocol_and_only_the_fixed_one_comes_back(
    demo: Demo, nats_server: NatsServer
) -> None:
    john = mint(actor("john"))
    async with gateway(demo, nats_server.url) as gw:
        async with websockets.connect(gw.url, subprotocols=bearer(john), ping_interval=None) as ws:
            assert ws.response is not None and ws.response.status_code == 101
            assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == [PROTOCOL]
            assert john not in str(ws.response.headers)
            assert ws.subprotocol == PROTOCOL
            assert (await subscribe(ws, demo.live_topic))["type"] == "snapshot"
        # The same token both ways is one token.
        async with websockets.connect(
            gw.url,
            subprotocols=bearer(john),
            additional_headers={"Authorization": f"Bearer {john}"},
            ping_interval=None,
        ) as ws:
            assert (await subscribe(ws, "my-day"))["type"] == "snapshot"


async def refused(url: str, **options: Any) -> websockets.ConnectionClosed:
    """How the gateway closes a websocket it accepted (never a failed handshake, never 500)."""
    async with websockets.connect(url, ping_interval=None, **options) as socket:
        assert socket.response is not None and socket.response.status_code == 101
        if PROTOCOL in options.get("subprotocols", ()):
            assert socket.subprotocol == PROTOCOL  # never the token
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await receive(socket)
    return closed.value


async def test_a_missing_wrong_expired_or_doubled_token_is_closed_with_4401_and_a_header_works(
    demo: Demo, nats_server: NatsServer
) -> None:
    john, maria = mint(actor("john")), mint(actor("maria"))
    expired = mint(actor("john"), ttl=-timedelta(minutes=5))
    refusals: dict[str, dict[str, Any]] = {
        "no token": {},
        "a forged token": {"subprotocols": bearer("forged.token.value")},
        "an expired token": {"subprotocols": bearer(expired)},
        "a token without the fixed protocol": {
            "subprotocols": [Subprotocol(BEARER_PROTOCOL + john)]
        },
        "two tokens as subprotocols": {
            "subprotocols": [*bearer(john), Subprotocol(BEARER_PROTOCOL + maria)]
        },
        "one token as a subprotocol, another in the header": {
            "subprotocols": bearer(john),
            "additional_headers": {"Authorization": f"Bearer {maria}"},
        },
    }
    async with gateway(demo, nats_server.url) as gw:
        for case, options in refusals.items():
            closed = await refused(gw.url, **options)
            assert closed.rcvd is not None and closed.rcvd.code == UNAUTHORIZED, case
        # Outside development a token in the URL is refused, even a good one, and says where
        # it goes instead.
        closed = await refused(f"{gw.url}?token={john}")
        assert closed.rcvd is not None and closed.rcvd.code == UNAUTHORIZED
        assert BEARER_PROTOCOL in closed.rcvd.reason and john not in closed.rcvd.reason

        headers = {"Authorization": f"Bearer {john}"}
        async with websockets.connect(
            gw.url, additional_headers=headers, ping_interval=None
        ) as socket:
            assert socket.subprotocol is None
            assert (await subscribe(socket, demo.live_topic))["type"] == "snapshot"
        elsewhere = {**headers, "X-Acting-Centre": EMPTY_CENTRE}  # only a SUPER_ADMIN may
        closed = await refused(gw.url, additional_headers=elsewhere)
        assert closed.rcvd is not None and closed.rcvd.code == FORBIDDEN


async def test_in_development_a_token_in_the_url_still_works_but_only_alone(
    demo: Demo, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTORPULSE_DEV_MODE", "1")
    john, maria = mint(actor("john")), mint(actor("maria"))
    async with gateway(demo, nats_server.url) as gw:
        async with websockets.connect(f"{gw.url}?token={john}", ping_interval=None) as socket:
            assert (await subscribe(socket, demo.live_topic))["type"] == "snapshot"
        closed = await refused(f"{gw.url}?token={john}", subprotocols=bearer(maria))
        assert closed.rcvd is not None and closed.rcvd.code == UNAUTHORIZED


async def test_reconnecting_with_the_last_version_seen(demo: Demo, nats_server: NatsServer) -> None:
    session = demo.live_topic
    async with gateway(demo, nats_server.url) as gw:
        async with connect(gw.url, actor("john")) as socket:
            version = (await subscribe(socket, session))["version"]
        async with connect(gw.url, actor("john")) as socket:
            current = await subscribe(socket, session, lastVersion=version)
            assert current == {"type": "subscribed", "topic": session, "version": version}
        await demo.mark(None, "jane", AttendanceStatus.LATE)  # missed while away
        async with connect(gw.url, actor("john")) as socket:
            missed = await subscribe(socket, session, lastVersion=version)
            assert missed["type"] == "snapshot" and missed["version"] > version
            jane = next(s for s in missed["data"]["students"] if s["name"] == "Jane Johnson")
            assert jane["attendance"] == "LATE"


async def test_a_lost_change_notice_is_caught_by_the_periodic_check(
    demo: Demo, nats_server: NatsServer
) -> None:
    session = demo.live_topic
    async with (
        gateway(demo, nats_server.url, resync_seconds=0.3) as gw,
        connect(gw.url, actor("john")) as socket,
    ):
        before = await subscribe(socket, session)
        started = time.monotonic()
        await demo.mark(None, "alex", AttendanceStatus.LATE)  # committed, but no notice sent
        delta = await next_change(socket, session, before["version"])
        assert delta["type"] == "delta" and time.monotonic() - started < 2
        alex = next(
            s
            for s in apply_merge_patch(before["data"], delta["patch"])["students"]
            if s["name"] == "Alex Thompson"
        )
        assert alex["attendance"] == "LATE"


async def test_a_client_that_stops_reading_costs_a_bounded_queue_then_gets_a_snapshot(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    session = demo.live_topic
    dropped_before = metric("tutorpulse_gateway_dropped_total")
    async with slow_reader(demo, nats_server.url) as (gw, client):
        first = await subscribe(client, session)
        await subscribe(client, "my-day")
        (connection,) = gw.hub.connections
        # It keeps asking for its whole day (about 4 kB each time) but reads nothing.
        longest = 0
        for _ in range(300):
            await client.send('{"type":"subscribe","topic":"my-day"}')
            longest = max(longest, connection.outbox.qsize())
        deadline = time.monotonic() + 10
        while metric("tutorpulse_gateway_dropped_total") - dropped_before < 100:
            assert time.monotonic() < deadline, "the client never fell a queue behind"
            longest = max(longest, connection.outbox.qsize())
            await asyncio.sleep(0.005)
        assert longest <= 4 and connection.outbox.qsize() <= 4

        # Reading again: the session, which it never asked for again, restarts with a
        # snapshot.
        resent = await next_change(client, session, -1, timeout=10)
        assert resent["type"] == "snapshot" and resent["version"] == first["version"]
        await demo.mark(nc, "alex", AttendanceStatus.ABSENT)
        delta = await next_change(client, session, resent["version"], timeout=10)
        assert delta["type"] == "delta"
        alex = next(
            s
            for s in apply_merge_patch(resent["data"], delta["patch"])["students"]
            if s["name"] == "Alex Thompson"
        )
        assert alex["attendance"] == "ABSENT"


async def test_frames_written_straight_to_a_socket_queue_once_it_stops_reading(
    demo: Demo, nats_server: NatsServer
) -> None:
    """A round's frames go straight to the socket's transport only while it takes them: once a
    client stops reading and the transport's buffer fills, they queue (boundedly), are dropped,
    and the client gets a fresh snapshot when it reads again."""
    session = demo.live_topic
    dropped_before = metric("tutorpulse_gateway_dropped_total")
    async with slow_reader(demo, nats_server.url) as (gw, client):
        first = await subscribe(client, session)
        (connection,) = gw.hub.connections
        assert connection.direct is not None, "uvicorn's socket is written straight to"
        # Frames of about 16 kB each, as a round makes them, for a client reading none.
        big = Frame.of(
            protocol.Delta(topic=session, version=first["version"], patch={"note": "x" * 16_000})
        )
        longest = 0
        for _ in range(40):
            connection.offer(big)
            longest = max(longest, connection.outbox.qsize())
        assert connection.behind and longest <= 4
        assert metric("tutorpulse_gateway_dropped_total") > dropped_before

        # Reading again: what was written arrives whole, then the session restarts
        # with a snapshot.
        deadline = time.monotonic() + 10
        while True:
            message = await receive(client, max(0.01, deadline - time.monotonic()))
            if message["type"] == "snapshot":
                break
            assert message == {
                "type": "delta",
                "topic": session,
                "version": first["version"],
                "patch": {"note": "x" * 16_000},
            }
        assert message["topic"] == session and message["version"] == first["version"]
        assert message["data"]["status"] == "LIVE"


async def test_two_gateway_replicas_each_deliver_to_their_own_clients(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    session = demo.live_topic
    async with gateway(demo, nc) as first, gateway(demo, nats_server.url) as second:
        async with (
            connect(first.url, actor("john")) as john,
            connect(second.url, actor("david")) as david,
        ):
            seen = (await subscribe(john, session))["version"]
            assert (await subscribe(john, "my-day"))["type"] == "snapshot"
            assert (await subscribe(david, session))["version"] == seen
            assert len(first.hub.nats_subjects) == 2 and len(second.hub.nats_subjects) == 1

            await demo.mark(nc, "alex", AttendanceStatus.ABSENT)
            for socket in (john, david):
                delta = await next_change(socket, session, seen)
                assert delta["type"] == "delta" and "ABSENT" in json.dumps(delta["patch"])
        await eventually(
            lambda: not first.hub.nats_subjects and not second.hub.nats_subjects,
            "NATS subscriptions outlived their last follower",
        )


async def test_pings_keep_a_client_and_silence_closes_it(
    demo: Demo, nats_server: NatsServer
) -> None:
    async with (
        gateway(demo, nats_server.url, ping_seconds=0.2) as gw,
        connect(gw.url, actor("john")) as silent,
        connect(gw.url, actor("john")) as polite,
    ):

        async def answer_pings() -> None:
            while True:
                if json.loads(await polite.recv())["type"] == "ping":
                    await polite.send('{"type":"pong"}')

        answering = asyncio.create_task(answer_pings())
        pings = 0
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                pings += json.loads(await asyncio.wait_for(silent.recv(), 5))["type"] == "ping"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == IDLE
        assert pings >= 2, "closed after three ping intervals, not before"
        await asyncio.sleep(0.4)
        assert not answering.done(), "a client that answers pings stays connected"
        answering.cancel()
        await polite.send('{"type":"ping"}')
        assert await receive(polite) == {"type": "pong"}


async def test_health_readiness_and_metrics(demo: Demo, nats_server: NatsServer) -> None:
    async with gateway(demo, nats_server.url) as gw, connect(gw.url, actor("john")) as socket:
        await subscribe(socket, demo.live_topic)
        async with httpx.AsyncClient(base_url=gw.http) as http:
            assert (await http.get("/health")).json()["status"] == "ok"
            assert (await http.get("/ready")).status_code == 200
            metrics = (await http.get("/metrics")).text
        for name in (
            "tutorpulse_gateway_connections",
            "tutorpulse_gateway_subscriptions",
            'tutorpulse_gateway_messages_sent_total{type="snapshot"}',
            "tutorpulse_gateway_resyncs_total",
            "tutorpulse_gateway_dropped_total",
        ):
            assert name in metrics
        nats_server.stop()
        async with httpx.AsyncClient(base_url=gw.http) as http:
            deadline = time.monotonic() + 5
            while (await http.get("/ready")).status_code != 503:
                assert time.monotonic() < deadline, "still ready without NATS"
                await asyncio.sleep(0.05)


async def test_the_shipped_client_prints_changes_and_resumes_after_a_gateway_restart(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    with listener() as probe:
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.live_gateway.client",
        "--token",
        mint(actor("john")),
        "--session",
        str(demo.sessions[LIVE]),
        "--url",
        f"ws://127.0.0.1:{port}/live",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    output = process.stdout

    async def line() -> str:
        return (await asyncio.wait_for(output.readline(), 20)).decode()

    try:
        async with gateway(demo, nats_server.url, port=port):
            first = await line()
            assert first.startswith(f"snapshot {demo.live_topic} v") and f"{LIVE} LIVE" in first
            await demo.mark(nc, "jane", AttendanceStatus.EXCUSED)
            delta = await line()
            assert delta.startswith("delta") and "Jane Johnson EXCUSED" in delta

        await demo.mark(None, "michael", AttendanceStatus.ABSENT)  # while the gateway is down
        async with gateway(demo, nats_server.url, port=port):
            resumed = await line()
            assert resumed.startswith("snapshot") and "Michael Lee ABSENT" in resumed
    finally:
        process.terminate()
        await process.wait()


async def announce(demo: Demo, nc: Client) -> None:
    """Project what was recorded since and publish the change notices, as the projection
    service does after its commit."""
    for change in demo.project():
        await nc.publish(*notice_for(change))
    await nc.flush()


async def test_a_student_overview_follows_its_own_access_rules(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    topic = f"student:{demo_person('michael').id}"
    async with (
        gateway(demo, nats_server.url) as gw,
        connect(gw.url, actor("jennifer")) as parent,
        connect(gw.url, actor("john")) as tutor,
    ):
        first = await subscribe(parent, topic)
        assert first["type"] == "snapshot" and first["data"]["name"] == "Michael Lee"
        staff = await subscribe(tutor, topic)
        assert staff["version"] == first["version"]
        demo.centres.handle(
            actor("john"),
            WriteNote(
                student_id=demo_person("michael").id,
                content="Needs a quieter seat",
                visibility=events.NoteVisibility.INTERNAL,
            ),
        )
        await demo.mark(nc, "michael", AttendanceStatus.ABSENT)
        await announce(demo, nc)
        stored = demo.store.get("student", str(demo_person("michael").id))
        assert stored is not None

        async def follow(
            socket: ClientConnection, view: dict[str, Any], version: int
        ) -> dict[str, Any]:
            """Apply deltas until the view reaches the stored document's version."""
            while version < stored.version:
                delta = await next_change(socket, topic, version)
                view, version = apply_merge_patch(view, delta["patch"]), delta["version"]
            return view

        view = await follow(parent, first["data"], first["version"])
        absences = first["data"]["attendanceSummary"]["ABSENT"]
        assert view["attendanceSummary"]["ABSENT"] == absences + 1
        assert view["notes"] == []  # a parent never sees INTERNAL notes
        fresh = await subscribe(parent, topic)
        assert fresh["version"] == stored.version and without_clock(view) == without_clock(
            fresh["data"]
        )
        seen_by_staff = await follow(tutor, staff["data"], staff["version"])
        assert [n["content"] for n in seen_by_staff["notes"]] == ["Needs a quieter seat"]

    async with gateway(demo, nats_server.url) as gw:
        for who, status in (("robert", 404), ("jane", 404), ("emily", 403)):
            async with connect(gw.url, actor(who)) as socket:
                assert (await subscribe(socket, topic))["status"] == status, who
        async with connect(gw.url, actor("sarah", EMPTY_CENTRE)) as socket:
            assert (await subscribe(socket, topic))["status"] == 404
            assert (await subscribe(socket, "student:nobody"))["status"] == 400


async def test_a_class_roster_is_pushed_to_its_teacher_and_staff_only(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    admin = actor("sarah")
    created = demo.centres.handle(
        admin,
        CreateClass(
            name="Year 9 Maths", subject="Maths", teacher_id=demo_person("john").id, capacity=3
        ),
    )
    class_id = UUID(created.body["classId"])
    demo.centres.handle(admin, AddClassMember(class_id=class_id, student_id=demo_person("jane").id))
    await announce(demo, nc)
    topic = f"class:{class_id}"
    async with gateway(demo, nats_server.url) as gw, connect(gw.url, actor("john")) as socket:
        first = await subscribe(socket, topic)
        assert first["type"] == "snapshot" and first["data"]["placesLeft"] == 2
        assert [m["name"] for m in first["data"]["members"]] == ["Jane Johnson"]
        demo.centres.handle(
            admin, AddClassMember(class_id=class_id, student_id=demo_person("alex").id)
        )
        await announce(demo, nc)
        delta = await next_change(socket, topic, first["version"])
        roster = apply_merge_patch(first["data"], delta["patch"])
        assert [m["name"] for m in roster["members"]] == ["Alex Thompson", "Jane Johnson"]
        assert roster["placesLeft"] == 1 and roster == (await subscribe(socket, topic))["data"]
        for who, status in (("maria", 403), ("jane", 403), ("robert", 403)):
            async with connect(gw.url, actor(who)) as other:
                assert (await subscribe(other, topic))["status"] == status, who
        async with connect(gw.url, actor("david", EMPTY_CENTRE)) as elsewhere:
            assert (await subscribe(elsewhere, topic))["status"] == 404


async def test_the_catch_up_list_is_pushed_to_staff_as_catch_ups_change(
    demo: Demo, nats_server: NatsServer, nc: Client
) -> None:
    async with (
        gateway(demo, nats_server.url) as gw,
        connect(gw.url, actor("david")) as supervisor,
        connect(gw.url, actor("maria")) as other_tutor,
    ):
        first = await subscribe(supervisor, "catch-ups")
        assert first["type"] == "snapshot"
        before = {row["catchUpId"] for row in first["data"]["catchUps"]}
        theirs = await subscribe(other_tutor, "catch-ups")
        assert all(row["tutorName"] == "Maria Garcia" for row in theirs["data"]["catchUps"])

        await demo.mark(nc, "michael", AttendanceStatus.ABSENT)  # in John's live session
        delta = await next_change(supervisor, "catch-ups", first["version"])
        listed = apply_merge_patch(first["data"], delta["patch"])
        (new,) = [row for row in listed["catchUps"] if row["catchUpId"] not in before]
        assert (new["studentName"], new["sessionTitle"], new["status"]) == (
            "Michael Lee",
            LIVE,
            "PENDING",
        )
        assert listed["total"] == first["data"]["total"] + 1
        assert without_clock(listed) == without_clock(
            (await subscribe(supervisor, "catch-ups"))["data"]
        )
        # John's session is none of Maria's business: her list does not move.
        with pytest.raises(asyncio.TimeoutError):
            await next_change(other_tutor, "catch-ups", theirs["version"], timeout=1)

    async with gateway(demo, nats_server.url) as gw:
        for who in ("jane", "robert", "emily"):
            async with connect(gw.url, actor(who)) as socket:
                assert (await subscribe(socket, "catch-ups"))["status"] == 403, who
        async with connect(gw.url, actor("sarah", EMPTY_CENTRE)) as elsewhere:
            assert (await subscribe(elsewhere, "catch-ups"))["data"]["catchUps"] == []
