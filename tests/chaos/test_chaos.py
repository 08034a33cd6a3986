"""kill -9 of every process under load, and restarts of PostgreSQL and nats-server.

The cluster runs as it would in production, each service its own process: one command service,
two relays (a leader and a standby), two projection replicas, the gateway and the query API, on
PostgreSQL (event store and read models) and nats-server. Three tutors teach session after
session meanwhile (tests/chaos/load.py). Each fault waits until the store has grown by a number
of events since the last one, so the run is driven by counts, never by the clock; a killed
process is started again at once, as Kubernetes would; PostgreSQL and NATS are restarted under
the running services, which must find their way back alone.

Afterwards: every acknowledged command's events are in the store exactly once (its receipt, and
per event type as many events as the acknowledged commands append); TP_EVENTS holds exactly one
message per stored event, in store order; the live read models equal a rebuild from the store;
TP_DLQ is empty; and no process ended by itself.

``make test`` runs a short round (``TUTORPULSE_CHAOS_KILLS``, default 2 kills of each kind);
``make chaos`` runs the long one and writes the measured recovery times to
``var/chaos/report.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import websockets
from eventsourcing.persistence import Notification, OperationalError
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.command.idempotency import receipt_id
from services.live_gateway.client import SNAPSHOT_MAX_BYTES
from shared import events
from shared.events import STREAM_NAME
from shared.eventstore import EventStoreSettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load as load_settings
from shared.tenancy import Actor
from shared.tenancy.tokens import mint
from tests.builders import register_centre
from tests.chaos.load import Lane, Load, run_lane
from tests.chaos.processes import child_environment, until
from tests.integration.streams import read_stream
from tests.support.servers import (
    NatsServer,
    PostgresServer,
    free_port,
    running_nats,
    running_postgres,
)
from tests.support.service_process import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

KILLS = int(os.environ.get("TUTORPULSE_CHAOS_KILLS", "2"))
EVENTS_BETWEEN_FAULTS = int(os.environ.get("TUTORPULSE_CHAOS_EVENTS_BETWEEN_FAULTS", "80"))
REPORT = os.environ.get("TUTORPULSE_CHAOS_REPORT")
CENTRE = "chaos-centre"
DLQ_STREAM = "TP_DLQ"
HEAD_ATTEMPTS = 300
"""How many times the test asks for the store's head while PostgreSQL comes back (0.1 s apart)."""


@dataclass(frozen=True)
class Recovery:
    fault: str
    head: int
    seconds: float
    detail: str = ""


@dataclass
class Cluster:
    pg: PostgresServer
    nats: NatsServer
    nc: Client
    centres: TutoringCentres
    read: ReadStore
    http: httpx.AsyncClient
    command: ServiceProcess
    relays: list[ServiceProcess]
    projections: list[ServiceProcess]
    gateway: ServiceProcess
    query: ServiceProcess
    people: dict[str, Actor]
    recoveries: list[Recovery] = field(default_factory=list)
    gateway_said: str = ""

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.command, *self.relays, *self.projections, self.gateway, self.query]

    def head(self) -> int:
        """The last notification id stored. Right after PostgreSQL restarts, the test's own
        pooled connection is one the restart cut: asked again until the server answers."""
        for _ in range(HEAD_ATTEMPTS - 1):
            try:
                return self.centres.recorder.max_notification_id() or 0
            except OperationalError:
                time.sleep(0.1)
        return self.centres.recorder.max_notification_id() or 0

    async def head_async(self) -> int:
        return await asyncio.to_thread(self.head)

    async def streamed_up_to(self) -> int:
        """The notification id of the last event in TP_EVENTS."""
        try:
            info = await self.nc.jetstream().stream_info(STREAM_NAME)
            if not info.state.last_seq:
                return 0
            message = await self.nc.jetstream().get_msg(STREAM_NAME, info.state.last_seq)
        except Exception:  # NATS is being restarted: not there yet
            return 0
        return int((message.headers or {}).get("Tp-Notification-Id", 0))

    async def watermark(self) -> int:
        try:
            return await asyncio.to_thread(self.read.watermark)
        except Exception:  # PostgreSQL is being restarted: not there yet
            return 0

    async def all_ready(self) -> bool:
        answers = await asyncio.gather(*(s.ready(self.http) for s in self.services))
        return all(answers)

    async def explain(self) -> str:
        """Where the events are (stored, streamed, projected), which services are not ready,
        and the end of their logs (the projections' always: a lag is theirs to explain)."""
        parts = [
            f"stored up to {await self.head_async()}, streamed up to "
            f"{await self.streamed_up_to()}, projected up to {await self.watermark()}",
            f"the gateway's last answer: {self.gateway_said}",
        ]
        for service in self.services:
            if service in self.projections or not await service.ready(self.http):
                parts.append(
                    f"--- {service.name} (exit code {service.exited_by_itself()}):\n"
                    f"{service.output()[-1500:]}"
                )
        return "\n".join(parts)

    async def leader(self) -> ServiceProcess:
        async def one() -> bool:
            return any(
                [await r.metric(self.http, "tutorpulse_relay_leader") == 1 for r in self.relays]
            )

        await until(one, "a relay leads")
        for relay in self.relays:
            if await relay.metric(self.http, "tutorpulse_relay_leader") == 1:
                return relay
        raise AssertionError("no relay leads")

    async def gateway_serves(self) -> bool:
        url = self.gateway.url.replace("http://", "ws://") + "/live"
        try:
            async with websockets.connect(
                url,
                additional_headers={"Authorization": f"Bearer {mint(self.people['tutor'])}"},
                ping_interval=None,
                open_timeout=2,
                max_size=SNAPSHOT_MAX_BYTES,
            ) as socket:
                await socket.send(json.dumps({"type": "subscribe", "topic": "my-day"}))
                async with asyncio.timeout(10):
                    while True:  # a server ping may come first
                        message = json.loads(await socket.recv())
                        self.gateway_said = str(message)[:300]
                        if message.get("type") in ("snapshot", "error"):
                            return bool(message["type"] == "snapshot")
        except (OSError, TimeoutError, websockets.WebSocketException) as error:
            self.gateway_said = repr(error)
            return False


# --- the faults --------------------------------------------------------------------------


async def kill_command_service(cluster: Cluster) -> Recovery:
    head = await cluster.head_async()
    cluster.command.kill()
    started = time.monotonic()
    cluster.command.start()
    await until(lambda: cluster.command.ready(cluster.http), "the command service comes back")
    return Recovery(
        "kill -9 command service", head, time.monotonic() - started, "restarted, until /ready"
    )


async def kill_relay_leader(cluster: Cluster) -> Recovery:
    leader = await cluster.leader()
    head = await cluster.head_async()
    leader.kill()
    started = time.monotonic()
    leader.start()  # back as the standby

    async def published() -> bool:
        return await cluster.streamed_up_to() > head

    await until(published, "the standby relay takes over and publishes")
    return Recovery(
        "kill -9 relay leader",
        head,
        time.monotonic() - started,
        "until an event committed after the kill is in TP_EVENTS (the standby leads)",
    )


def kill_projection_replica(index: int) -> Callable[[Cluster], Awaitable[Recovery]]:
    async def fault(cluster: Cluster) -> Recovery:
        replica = cluster.projections[index]
        head = await cluster.head_async()
        replica.kill()
        started = time.monotonic()
        replica.start()

        async def projected() -> bool:
            return await cluster.watermark() >= head

        await until(projected, "the read models reach the head at the kill")
        return Recovery(
            f"kill -9 projection replica {index + 1}",
            head,
            time.monotonic() - started,
            "until the watermark passes every event committed before the kill",
        )

    return fault


async def kill_gateway(cluster: Cluster) -> Recovery:
    head = await cluster.head_async()
    cluster.gateway.kill()
    started = time.monotonic()
    cluster.gateway.start()
    await until(cluster.gateway_serves, "the gateway serves a snapshot again")
    return Recovery(
        "kill -9 live gateway",
        head,
        time.monotonic() - started,
        "restarted, until a websocket gets its snapshot",
    )


async def restart_postgres(cluster: Cluster) -> Recovery:
    head = await cluster.head_async()
    cluster.pg.stop()

    async def command_says_so() -> bool:
        response = await cluster.http.get(f"{cluster.command.url}/ready", timeout=5)
        return response.status_code == 503

    await until(command_says_so, "the command service reports PostgreSQL down")
    cluster.pg.start()
    started = time.monotonic()

    async def recovered() -> bool:
        return await cluster.all_ready() and await cluster.watermark() >= head

    await until(recovered, "every service recovers from the PostgreSQL restart by itself")
    return Recovery(
        "PostgreSQL restart",
        head,
        time.monotonic() - started,
        "from the server back, until every /ready is 200 and the read models "
        "caught up; no service restarted",
    )


async def restart_nats(cluster: Cluster) -> Recovery:
    head = await cluster.head_async()
    cluster.nats.kill()

    async def relay_says_so() -> bool:
        leader_ready = [await r.ready(cluster.http) for r in cluster.relays]
        return not any(leader_ready) and not await cluster.gateway.ready(cluster.http)

    await until(relay_says_so, "the relays and gateway report NATS down")
    cluster.nats.start()
    started = time.monotonic()

    async def recovered() -> bool:
        return (
            await cluster.all_ready()
            and await cluster.streamed_up_to() >= head
            and await cluster.watermark() >= head
        )

    await until(recovered, "every service recovers from the NATS restart by itself")
    return Recovery(
        "nats-server kill -9 and restart",
        head,
        time.monotonic() - started,
        "from the server back, until every /ready is 200 and events flow; no service restarted",
    )


def fault_plan(kills: int) -> list[Callable[[Cluster], Awaitable[Recovery]]]:
    rotation: list[Callable[[Cluster], Awaitable[Recovery]]] = []
    for round_ in range(kills):
        rotation += [
            kill_command_service,
            kill_relay_leader,
            kill_projection_replica(0),
            kill_gateway,
            kill_projection_replica(1),
        ]
        if kills >= 2 and round_ == kills // 2 - 1:
            rotation.append(restart_postgres)
        if kills >= 2 and round_ == kills - 1:
            rotation.append(restart_nats)
    if kills < 2:
        rotation += [restart_postgres, restart_nats]
    return rotation


# --- the run -----------------------------------------------------------------------------


@contextmanager
def servers(tmp_path: Path) -> Iterator[tuple[PostgresServer, NatsServer]]:
    with running_postgres() as pg, running_nats(tmp_path / "nats") as nats_server:
        yield pg, nats_server


@asynccontextmanager
async def cluster_under_test(
    tmp_path: Path, pg: PostgresServer, nats_server: NatsServer
) -> AsyncIterator[Cluster]:
    centres = TutoringCentres(load_settings(EventStoreSettings, pg.env()))
    read = open_read_store(
        load_settings(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    stores = {**pg.env(), "TUTORPULSE_READ_STORE": "postgres"}
    logs = tmp_path / "logs"

    def service(
        name: str, module: str, port_variable: str, nats_user: str | None = None
    ) -> ServiceProcess:
        nats_env = nats_server.env_for(nats_user) if nats_user else {}
        port = free_port()
        env = child_environment({**stores, **nats_env, port_variable: str(port)})
        return ServiceProcess(module, port, env, logs / f"{name}.log")

    command = service("command", "services.command", "TUTORPULSE_COMMAND_PORT")
    relays = [
        service(f"relay-{n}", "services.relay", "TUTORPULSE_RELAY_PORT", "relay") for n in (1, 2)
    ]
    projections = [
        service(
            f"projections-{n}", "services.projections", "TUTORPULSE_PROJECTIONS_PORT", "projections"
        )
        for n in (1, 2)
    ]
    gateway = service("gateway", "services.live_gateway", "TUTORPULSE_GATEWAY_PORT", "gateway")
    query = service("query", "services.query", "TUTORPULSE_QUERY_PORT")
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    http = httpx.AsyncClient()
    centre = await asyncio.to_thread(register_centre, centres, CENTRE)
    cluster = Cluster(
        pg,
        nats_server,
        nc,
        centres,
        read,
        http,
        command=command,
        relays=relays,
        projections=projections,
        gateway=gateway,
        query=query,
        people=centre.people,
    )
    try:
        for process in cluster.services:
            process.start()
        try:
            await until(cluster.all_ready, "the cluster starts")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{await cluster.explain()}") from None
        yield cluster
    finally:
        for process in cluster.services:
            process.stop()
        await http.aclose()
        await nc.close()
        read.close()
        centres.close()


def lanes(centre_people: dict[str, Actor]) -> list[Lane]:
    return [
        Lane(
            centre_people["tutor"],
            (centre_people["ann"], centre_people["ben"], centre_people["cal"]),
        ),
        Lane(
            centre_people["other_tutor"],
            (centre_people["dee"], centre_people["eve"], centre_people["fay"]),
        ),
        Lane(centre_people["supervisor"], (centre_people["ann"], centre_people["dee"])),
    ]


async def test_kill_9_of_every_process_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    with servers(tmp_path) as (pg, nats_server):
        async with cluster_under_test(tmp_path, pg, nats_server) as cluster:
            load = Load(cluster.command.url, cluster.query.url)
            stop = asyncio.Event()
            workers = [
                asyncio.create_task(run_lane(load, lane, stop, seed))
                for seed, lane in enumerate(lanes(cluster.people))
            ]
            try:
                last = await cluster.head_async()
                for fault in fault_plan(KILLS):

                    async def grown(mark: int = last) -> bool:
                        if any(w.done() for w in workers):
                            return True  # a lane failed: stop and report it below
                        return await cluster.head_async() >= mark + EVENTS_BETWEEN_FAULTS

                    await until(grown, "the load appends events", timeout=180)
                    _raise_from_failed_lanes(workers)
                    try:
                        cluster.recoveries.append(await fault(cluster))
                    except AssertionError as error:
                        raise AssertionError(f"{error}\n{await cluster.explain()}") from None
                    last = await cluster.head_async()
            finally:
                stop.set()
                done = await asyncio.gather(*workers, return_exceptions=True)
            _raise_from_failed_lanes(workers)
            assert not load.unexpected, load.unexpected
            assert all(isinstance(d, int) and d > 0 for d in done), done
            await converge(cluster)
            await verify(cluster, load)
            _write_report(cluster, load)


def _raise_from_failed_lanes(workers: list[asyncio.Task[int]]) -> None:
    for worker in workers:
        if worker.done() and (error := worker.exception()) is not None:
            raise error


async def converge(cluster: Cluster) -> None:
    head = await cluster.head_async()

    async def settled() -> bool:
        return await cluster.streamed_up_to() >= head and await cluster.watermark() >= head

    await until(settled, "the stream and the read models reach the store's head")


async def verify(cluster: Cluster, load: Load) -> None:
    centres = cluster.centres
    stored = await asyncio.to_thread(centres.recorder.select_notifications, 1, 10_000_000)

    # Every acknowledged command's events are in the store, once.
    for ack in load.acknowledged:
        receipts = await asyncio.to_thread(
            centres.recorder.select_events, receipt_id(ack.actor, ack.key)
        )
        assert len(receipts) == 1, f"{ack.key}: {len(receipts)} receipts"
        recorded = events.decode(receipts[0].state)
        assert isinstance(recorded, events.CommandReceiptRecorded)
        assert recorded.status_code == ack.status
        assert recorded.body == {k: v for k, v in ack.body.items() if k != "position"}
    receipts_stored = sum(1 for n in stored if n.topic == "CommandReceiptRecorded")
    assert receipts_stored == len(load.acknowledged)
    by_type = Counter(n.topic for n in stored)
    for event_type, count in load.expected_events.items():
        assert by_type[event_type] == count, f"{event_type}: {by_type[event_type]} != {count}"

    # TP_EVENTS: exactly one message per stored event, in the store's order, byte for byte.
    js = cluster.nc.jetstream()
    streamed = await read_stream(js)
    assert [s.notification_id for s in streamed] == [n.id for n in stored]
    assert all(s.data == n.state for s, n in zip(streamed, stored, strict=True))
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0

    # The live read models equal a rebuild from the store.
    reference_db = cluster.pg.fresh_database("chaos_reference")
    reference = open_read_store(
        load_settings(
            ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **reference_db.env()}
        )
    )
    live, rebuilt = await live_and_rebuilt(cluster.read, reference, stored)
    assert live == rebuilt, differences(live, rebuilt)

    # Nothing ended by itself: every exit was a kill of the test's.
    for process in cluster.services:
        assert process.alive, f"{process.name} exited by itself:\n{process.output()[-3000:]}"


def _write_report(cluster: Cluster, load: Load) -> None:
    lines = ["| fault | store head at the fault | recovered in | measured |", "|---|---:|---:|---|"]
    lines += [
        f"| {r.fault} | {r.head} | {r.seconds:.2f} s | {r.detail} |" for r in cluster.recoveries
    ]
    summary = (
        f"{len(load.acknowledged)} commands acknowledged ({load.replays} replayed on "
        f"purpose), {cluster.head()} events; retries: {dict(load.retries)}"
    )
    text = "\n".join([summary, "", *lines, ""])
    print("\n" + text)
    if REPORT:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        Path(REPORT).write_text(text)


async def live_and_rebuilt(
    read: ReadStore, reference: ReadStore, stored: Sequence[Notification]
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """Dumps of the live read models and of ``reference`` (an empty read store, closed after)
    once every stored event has been applied to it once, in the store's order."""
    try:
        await asyncio.to_thread(
            apply_all, reference, [(events.decode(n.state), n.id) for n in stored]
        )
        live = await asyncio.to_thread(read.dump, read.generation())
        rebuilt = await asyncio.to_thread(reference.dump, reference.generation())
    finally:
        reference.close()
    return live, rebuilt


def differences(
    live: dict[str, list[tuple[Any, ...]]], rebuilt: dict[str, list[tuple[Any, ...]]], most: int = 5
) -> str:
    """The rows that differ between two dumps of the read models, live first, a few of each."""
    lines: list[str] = []
    for table in sorted(set(live) | set(rebuilt)):
        mine, theirs = set(live.get(table, [])), set(rebuilt.get(table, []))
        only_live, only_rebuilt = sorted(mine - theirs), sorted(theirs - mine)
        if only_live or only_rebuilt:
            lines.append(
                f"{table}: {len(only_live)} rows only live, {len(only_rebuilt)} only rebuilt"
            )
            lines += [f"  live:    {row}" for row in only_live[:most]]
            lines += [f"  rebuilt: {row}" for row in only_rebuilt[:most]]
    return "\n".join(lines)
