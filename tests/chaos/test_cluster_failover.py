"""``make cluster`` under load loses one NATS server and one replica of every service, and keeps
serving without losing or duplicating anything.

The cluster is the one ``make cluster`` runs (``services/cluster_ha.py``) on free ports: three
nats-servers with the streams at three replicas, PostgreSQL, and two replicas of every service.
Three tutors teach session after session (tests/chaos/load.py), each through a client that
sends to one command replica and fails over to the other when it refuses the connection; a
reader reads My Day the same way through the query replicas; websocket clients follow My Day on
either gateway and, when theirs goes, reconnect to the other with the version they hold.

Everything is driven by counts: after ``BEFORE`` accepted commands the stream's leading
nats-server is killed (-9), then one replica of each service: the relay that leads, a command
API, a projection replica, a gateway, a query API, a scheduler and a notifier, each once the
takeover of the previous kill is complete (measured while the load goes on) and ``BETWEEN``
more commands were accepted. The load goes on until ``AFTER`` more commands are accepted (the
timeouts only bound a failure). Then: every accepted command's events are in the store once,
TP_EVENTS holds each stored event exactly once and in order, the read models equal a rebuild
(each event applied once), the scheduler's and notifier's consumers got through everything, no
request found both replicas refusing, every websocket client of the lost gateway resumed on the
other and holds the current version, and no surviving process ended.

``make test`` runs ``AFTER`` = 500; ``make chaos`` a longer round
(``TUTORPULSE_FAILOVER_COMMANDS``), with the measured takeovers in ``var/chaos/failover.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
import websockets
from nats.aio.client import Client

from services.cluster_ha import HaCluster, Layout, Process, Replica
from services.command.application import TutoringCentres
from services.command.idempotency import receipt_id
from services.live_gateway.client import SNAPSHOT_MAX_BYTES
from shared import events
from shared.events import STREAM_NAME
from shared.eventstore import EventStoreSettings
from shared.messaging.auth import DLQ_STREAM, NOTIFIER_CONSUMER, SCHEDULER_CONSUMER
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load as load_settings
from shared.tenancy import Actor
from shared.tenancy.tokens import mint
from tests.builders import register_centre
from tests.chaos.load import Lane, Load, teach_one_session
from tests.chaos.processes import until
from tests.chaos.test_chaos import differences, live_and_rebuilt
from tests.integration.streams import read_stream
from tests.support.servers import HARNESS, HARNESS_PERMISSIONS

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

BEFORE = int(os.environ.get("TUTORPULSE_FAILOVER_COMMANDS_BEFORE", "100"))
BETWEEN = int(os.environ.get("TUTORPULSE_FAILOVER_COMMANDS_BETWEEN", "20"))
AFTER = int(os.environ.get("TUTORPULSE_FAILOVER_COMMANDS", "500"))
REPORT = os.environ.get("TUTORPULSE_FAILOVER_REPORT")
CENTRE = "failover-centre"
FOLLOWERS = 4


# --- clients that fail over --------------------------------------------------------------


class Failover(httpx.AsyncBaseTransport):
    """Sends to one replica; when it refuses the connection, to the next one at once. A
    request every replica refused counts in :attr:`refused_by_all` (and fails)."""

    def __init__(self, ports: list[int], first: int) -> None:
        self.ports = ports
        self.current = first % len(ports)
        self.inner = httpx.AsyncHTTPTransport()
        self.refused_by_all = 0
        self.last_success = 0.0
        self.served: Counter[int] = Counter()

    @property
    def port(self) -> int:
        return self.ports[self.current]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        for _ in self.ports:
            target = httpx.Request(
                request.method,
                request.url.copy_with(port=self.port),
                headers=[(k, v) for k, v in request.headers.raw if k.lower() != b"host"],
                content=body,
                extensions=request.extensions,
            )
            try:
                response = await self.inner.handle_async_request(target)
            except httpx.ConnectError:
                self.current = (self.current + 1) % len(self.ports)
                continue
            self.last_success = time.monotonic()
            self.served[self.port] += 1
            return response
        self.refused_by_all += 1
        raise httpx.ConnectError("every replica refused the connection", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Follower:
    """A websocket client following ``actor``'s My Day on one gateway, moving to the next when
    the socket goes, with the version it holds (``lastVersion``)."""

    actor: Actor
    urls: list[str]
    current: int
    version: int | None = None
    resumed: list[tuple[int, float]] = field(default_factory=list)
    """(gateway index, when) of every ``snapshot`` or ``subscribed`` answer."""
    lost: list[tuple[int, float]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        token = mint(self.actor, ttl=timedelta(hours=2))
        while not stop.is_set():
            index = self.current
            try:
                async with websockets.connect(
                    f"{self.urls[index]}/live",
                    additional_headers={"Authorization": f"Bearer {token}"},
                    ping_interval=None,
                    open_timeout=3,
                    max_size=SNAPSHOT_MAX_BYTES,
                ) as socket:
                    subscribe: dict[str, Any] = {"type": "subscribe", "topic": "my-day"}
                    if self.version is not None:
                        subscribe["lastVersion"] = self.version
                    await socket.send(json.dumps(subscribe))
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(socket.recv(), 0.5)
                        except TimeoutError:
                            continue
                        if not self._take(index, json.loads(raw)):
                            break
            except (OSError, TimeoutError, websockets.WebSocketException):
                pass
            if stop.is_set():
                return
            self.lost.append((index, time.monotonic()))
            self.current = (index + 1) % len(self.urls)
            await asyncio.sleep(0.05)

    def _take(self, index: int, message: dict[str, Any]) -> bool:
        """Take one message; False to leave this gateway for the next."""
        kind = message.get("type")
        if kind in ("snapshot", "subscribed"):
            self.version = int(message["version"])
            self.resumed.append((index, time.monotonic()))
        elif kind == "delta":
            self.version = int(message["version"])
        elif kind == "error":  # e.g. 503 while that gateway reconnects to NATS: go elsewhere
            self.refusals.append(str(message))
            return False
        return True


# --- the cluster ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Takeover:
    what: str
    seconds: float
    measured: str


@dataclass
class Run:
    cluster: HaCluster
    centres: TutoringCentres
    read: ReadStore
    nc: Client
    people: dict[str, Actor]
    killed: list[Process] = field(default_factory=list)
    takeovers: list[Takeover] = field(default_factory=list)

    def replica(self, program: str, number: int = 1) -> Replica:
        return self.cluster.replicas_of(program)[number - 1]

    def ports(self, program: str) -> list[int]:
        return [r.process.port or 0 for r in self.cluster.replicas_of(program)]

    def head(self) -> int:
        return self.centres.recorder.max_notification_id() or 0

    async def head_async(self) -> int:
        return await asyncio.to_thread(self.head)

    async def streamed_up_to(self) -> int:
        try:
            js = self.nc.jetstream()
            info = await asyncio.wait_for(js.stream_info(STREAM_NAME), 2)
            if not info.state.last_seq:
                return 0
            message = await js.get_msg(STREAM_NAME, info.state.last_seq)
        except Exception:  # the stream is electing a leader: not there yet
            return 0
        return int((message.headers or {}).get("Tp-Notification-Id", 0))

    async def watermark(self) -> int:
        return await asyncio.to_thread(self.read.watermark)

    async def consumer_floor(self, consumer: str) -> tuple[int, int]:
        """(ack floor, delivered) stream sequences of a durable consumer of TP_EVENTS."""
        try:
            info = await self.nc.jetstream().consumer_info(STREAM_NAME, consumer, timeout=2)
        except Exception:
            return 0, 0
        return info.ack_floor.stream_seq or 0, info.delivered.stream_seq or 0

    def kill(self, process: Process) -> float:
        process.kill()
        self.killed.append(process)
        return time.monotonic()

    async def measure(
        self, what: str, measured: str, done: Callable[[], Awaitable[bool]], started: float
    ) -> None:
        """Wait, while the load goes on, for ``done()``: the takeover took from ``started``
        (the kill) until then."""
        await until(done, what, timeout=180)
        self.takeovers.append(Takeover(what, time.monotonic() - started, measured))


@asynccontextmanager
async def cluster_under_test(tmp_path: Path) -> AsyncIterator[Run]:
    cluster = HaCluster(
        tmp_path / "cluster",
        Layout.free(),
        seed_demo=False,
        extra_users={HARNESS: HARNESS_PERMISSIONS},
        log_format="json",
    )
    try:
        await asyncio.to_thread(cluster.start)
        assert cluster.postgres is not None
        stores = cluster.postgres.env()
        centres = TutoringCentres(load_settings(EventStoreSettings, stores))
        read = open_read_store(load_settings(ReadStoreSettings, stores))
        harness = cluster.credentials[HARNESS]
        nc = await nats.connect(
            servers=[node.url for node in cluster.layout.nats],
            user=harness.user,
            password=harness.password,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
        )
        try:
            centre = await asyncio.to_thread(register_centre, centres, CENTRE)
            yield Run(cluster, centres, read, nc, centre.people)
        finally:
            await nc.close()
            read.close()
            centres.close()
    finally:
        await asyncio.to_thread(cluster.stop)


def lanes(people: dict[str, Actor]) -> list[Lane]:
    return [
        Lane(people["tutor"], (people["ann"], people["ben"], people["cal"])),
        Lane(people["other_tutor"], (people["dee"], people["eve"], people["fay"])),
        Lane(people["supervisor"], (people["ann"], people["dee"])),
    ]


async def teach(load: Load, lane: Lane, transport: Failover, stop: asyncio.Event, seed: int) -> int:
    chance = random.Random(seed)
    taught = 0
    async with httpx.AsyncClient(transport=transport) as client:
        while not stop.is_set():
            await teach_one_session(load, client, lane, chance)
            taught += 1
    return taught


async def read_my_day(
    url: str, actor: Actor, transport: Failover, stop: asyncio.Event, answers: Counter[str]
) -> None:
    headers = {"Authorization": f"Bearer {mint(actor, ttl=timedelta(hours=2))}"}
    async with httpx.AsyncClient(transport=transport) as client:
        while not stop.is_set():
            try:
                response = await client.get(
                    f"{url}/api/academic/tutor/my-day", headers=headers, timeout=10
                )
                answers[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                answers[type(error).__name__] += 1
            await asyncio.sleep(0.02)


# --- the test -----------------------------------------------------------------------------


async def test_a_nats_server_and_one_replica_of_every_service_die_under_load(
    tmp_path: Path,
) -> None:
    async with cluster_under_test(tmp_path) as run:
        command_ports = run.ports("command")
        load = Load(f"http://127.0.0.1:{command_ports[0]}")
        commands = [Failover(command_ports, n) for n in range(3)]
        queries = Failover(run.ports("query"), 0)
        gateways = [f"ws://127.0.0.1:{port}" for port in run.ports("live_gateway")]
        tutors = [run.people["tutor"], run.people["other_tutor"]]
        followers = [Follower(tutors[n % 2], gateways, n % 2) for n in range(FOLLOWERS)]
        reads: Counter[str] = Counter()
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(teach(load, lane, commands[n], stop, n))
            for n, lane in enumerate(lanes(run.people))
        ]
        watching = asyncio.Event()
        watchers = [asyncio.create_task(f.run(watching)) for f in followers]
        others = []
        others.append(
            asyncio.create_task(
                read_my_day(
                    f"http://127.0.0.1:{run.ports('query')[0]}", tutors[0], queries, stop, reads
                )
            )
        )

        async def accepted(count: int) -> None:
            async def reached() -> bool:
                failed = [w for w in workers if w.done()]
                if failed:
                    failed[0].result()  # raises what the lane met
                return len(load.acknowledged) >= count

            await until(reached, f"{count} commands accepted", timeout=300)

        try:
            await accepted(BEFORE)
            await kill_faults(run, load, commands, queries, followers, accepted)
            await accepted(len(load.acknowledged) + AFTER)
        finally:
            stop.set()
            taught = await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*others, return_exceptions=True)
            for transport in [*commands, queries]:
                await transport.aclose()
        try:
            assert not load.unexpected, load.unexpected
            assert all(isinstance(t, int) and t > 0 for t in taught), taught
            await converge(run)
            await verify(run, load)
            assert [t.refused_by_all for t in commands] == [0, 0, 0], "both commands refused"
            assert queries.refused_by_all == 0, "both query replicas refused"
            assert set(reads) <= {"200", "ReadError", "RemoteProtocolError"}, reads
            await followers_current(followers, gateways)
        finally:
            watching.set()
            await asyncio.gather(*watchers, return_exceptions=True)
        report(run, load, commands, reads, followers)


async def kill_faults(
    run: Run,
    load: Load,
    commands: list[Failover],
    queries: Failover,
    followers: list[Follower],
    accepted: Callable[[int], Awaitable[None]],
) -> None:
    """Kill the stream's leading nats-server, then one replica of each service, ``BETWEEN``
    accepted commands apart, measuring each takeover while the load goes on."""

    async def next_kill() -> None:
        await accepted(len(load.acknowledged) + BETWEEN)

    def streams_after(head: int) -> Callable[[], Awaitable[bool]]:
        async def streamed() -> bool:
            return await run.streamed_up_to() > head

        return streamed

    # Without a fault first: how far behind the stream and the read models run under this load.
    head = await run.head_async()
    await run.measure(
        "no fault (baseline)",
        "until the stream holds the head of now",
        streams_after(head - 1),
        time.monotonic(),
    )
    head = await run.head_async()

    async def caught_up(h: int = head) -> bool:
        return await run.watermark() >= h

    await run.measure(
        "no fault (baseline)",
        "until the read models' watermark passes the head of now",
        caught_up,
        time.monotonic(),
    )
    await next_kill()

    # The nats-server that leads TP_EVENTS: the stream elects another, clients move.
    info = await run.nc.jetstream().stream_info(STREAM_NAME)
    assert info.config.num_replicas == 3 and info.cluster is not None
    leader = next(p for p in run.cluster.nats if p.name == info.cluster.leader)
    head = await run.head_async()
    await run.measure(
        f"kill -9 nats-server leading {STREAM_NAME} ({leader.name})",
        "until an event committed after the kill is in the stream",
        streams_after(head),
        run.kill(leader),
    )

    await next_kill()
    relay = await leading_relay(run)
    head = await run.head_async()
    await run.measure(
        f"kill -9 relay leader ({relay.name})",
        "until an event committed after the kill is in the stream (the standby leads)",
        streams_after(head),
        run.kill(relay.process),
    )

    await next_kill()
    await kill_behind_failover(run, "command", commands, "a client of it is answered by the other")

    await next_kill()
    head = await run.head_async()
    replica = run.replica("projections")
    killed_at = run.kill(replica.process)

    async def projected(h: int = head) -> bool:
        return await run.watermark() >= h

    await run.measure(
        f"kill -9 projection replica ({replica.name})",
        "until the read models' watermark passes every event committed before the kill",
        projected,
        killed_at,
    )

    await next_kill()
    gateway = run.replica("live_gateway")
    on_it = [f for f in followers if f.current == 0]
    killed_at = run.kill(gateway.process)

    async def resumed() -> bool:
        return all(any(t > killed_at and i != 0 for i, t in f.resumed) for f in on_it)

    await run.measure(
        f"kill -9 live gateway ({gateway.name}), {len(on_it)} websockets on it",
        "until every websocket of it resumed on the other gateway (subscribed or snapshot)",
        resumed,
        killed_at,
    )

    await next_kill()
    await kill_behind_failover(run, "query", [queries], "the reader is answered by the other")

    for program, consumer in (("scheduler", SCHEDULER_CONSUMER), ("notifier", NOTIFIER_CONSUMER)):
        await next_kill()
        _, delivered = await run.consumer_floor(consumer)
        replica = run.replica(program)
        killed_at = run.kill(replica.process)

        async def handled(name: str = consumer, mark: int = delivered) -> bool:
            floor, _ = await run.consumer_floor(name)
            return floor >= mark

        await run.measure(
            f"kill -9 {program} ({replica.name})",
            f"until the consumer {consumer} acknowledged everything delivered before the kill "
            "(what the killed one held comes back after the consumer's ack wait)",
            handled,
            killed_at,
        )


async def kill_behind_failover(
    run: Run, program: str, transports: list[Failover], measured: str
) -> None:
    replica = run.replica(program)
    port = replica.process.port
    clients = [t for t in transports if t.port == port]
    killed_at = run.kill(replica.process)

    async def served() -> bool:
        return all(t.last_success > killed_at and t.port != port for t in clients)

    await run.measure(
        f"kill -9 {program} ({replica.name}), {len(clients)} clients on it",
        f"until {measured}",
        served,
        killed_at,
    )


async def leading_relay(run: Run) -> Replica:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            for relay in run.cluster.replicas_of("relay"):
                with suppress(httpx.HTTPError):
                    answer = await client.get(f"{relay.process.url}/ready", timeout=2)
                    if answer.json().get("details", {}).get("leader"):
                        return relay
            await asyncio.sleep(0.1)
    raise AssertionError("no relay leads")


async def converge(run: Run) -> None:
    head = await run.head_async()
    last = (await run.nc.jetstream().stream_info(STREAM_NAME)).state.last_seq

    async def settled() -> bool:
        if await run.streamed_up_to() < head or await run.watermark() < head:
            return False
        for consumer in (SCHEDULER_CONSUMER, NOTIFIER_CONSUMER):
            info = await run.nc.jetstream().consumer_info(STREAM_NAME, consumer)
            if info.num_pending or info.num_ack_pending:
                return False
        return True

    await until(settled, f"the stream (seq {last}) and the read models reach the head", 180)


async def verify(run: Run, load: Load) -> None:
    centres = run.centres
    stored = await asyncio.to_thread(centres.recorder.select_notifications, 1, 10_000_000)

    # Every accepted command's events are in the store, once.
    for ack in load.acknowledged:
        receipts = await asyncio.to_thread(
            centres.recorder.select_events, receipt_id(ack.actor, ack.key)
        )
        assert len(receipts) == 1, f"{ack.key}: {len(receipts)} receipts"
    keys = [
        receipt.idempotency_key
        for n in stored
        if n.topic == "CommandReceiptRecorded"
        and isinstance(receipt := events.decode(n.state), events.CommandReceiptRecorded)
    ]
    # The load's keys are chaos-<n>; the scheduler's commands (reminders) have receipts too.
    assert len([k for k in keys if k.startswith("chaos-")]) == len(load.acknowledged)
    by_type = Counter(n.topic for n in stored)
    for event_type, count in load.expected_events.items():
        assert by_type[event_type] == count, f"{event_type}: {by_type[event_type]} != {count}"

    # In TP_EVENTS exactly once each, in the store's order, byte for byte.
    js = run.nc.jetstream()
    streamed = await read_stream(js)
    assert [s.notification_id for s in streamed] == [n.id for n in stored]
    assert all(s.data == n.state for s, n in zip(streamed, stored, strict=True))
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0

    # In the read models exactly once: they equal a rebuild that applies each event once.
    assert run.cluster.postgres is not None
    with psycopg.connect(run.cluster.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "failover_reference"')
    stores = {**run.cluster.postgres.env(), "TUTORPULSE_POSTGRES_DBNAME": "failover_reference"}
    reference = open_read_store(load_settings(ReadStoreSettings, stores))
    live, rebuilt = await live_and_rebuilt(run.read, reference, stored)
    # Every event once by the projector's own books (rm_log, rm_versions), and every document
    # as the rebuild's, version and all: a document's version counts the events that touched
    # it, whichever replica applied which first and however often a batch came back.
    assert live == rebuilt, differences(live, rebuilt)

    # The survivors never stopped.
    for process in run.cluster.processes():
        if process not in run.killed:
            assert process.alive, f"{process.name} ended by itself:\n{process.tail(3000)}"


async def followers_current(followers: list[Follower], gateways: list[str]) -> None:
    """Every websocket client, still following, comes to hold the version a fresh
    subscription to the surviving gateway gets."""

    async def fresh_version(actor: Actor) -> int:
        async with websockets.connect(
            f"{gateways[1]}/live",
            additional_headers={"Authorization": f"Bearer {mint(actor)}"},
            max_size=SNAPSHOT_MAX_BYTES,
        ) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": "my-day"}))
            while True:
                message = json.loads(await socket.recv())
                if message.get("type") == "snapshot":
                    return int(message["version"])

    for follower in followers:
        expected = await fresh_version(follower.actor)

        async def current(f: Follower = follower, version: int = expected) -> bool:
            return f.version == version

        await until(current, f"a websocket client reaches version {expected}", timeout=30)


def report(
    run: Run,
    load: Load,
    commands: list[Failover],
    reads: Counter[str],
    followers: list[Follower],
) -> None:
    served = sum((t.served for t in commands), Counter[int]())
    lines = [
        f"{len(load.acknowledged)} commands accepted ({load.replays} replayed on purpose), "
        f"{run.head()} events; command replicas served {dict(served)}; retries "
        f"{dict(load.retries)}; My Day reads {dict(reads)}; websocket resumes "
        f"{sum(len(f.resumed) for f in followers)}",
        "",
        "| fault | took over in | measured |",
        "|---|---:|---|",
        *(f"| {t.what} | {t.seconds:.2f} s | {t.measured} |" for t in run.takeovers),
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if REPORT:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        Path(REPORT).write_text(text)
