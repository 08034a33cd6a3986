"""Events from the store, through the relay and JetStream, into read models (real nats-server)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from services.command.application import TutoringCentres
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.seed import seed
from services.projections.rebuild import rebuild
from services.projections.service import ProjectionService, Settings, consumer_config
from services.relay.lease import FileLease
from services.relay.relay import Relay
from shared import events
from shared.events import STREAM_NAME, AttendanceStatus
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.messaging.stream_messages import notification_id_of
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy.demo import demo_person
from tests.readside import read_store
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(
    coroutine_factory: Callable[[], Coroutine[Any, Any, None]], stop: Callable[[], None]
) -> AsyncIterator[None]:
    task: asyncio.Task[None] = asyncio.create_task(coroutine_factory())
    try:
        yield
    finally:
        stop()
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def relaying(centres: TutoringCentres, nc: Client, folder: Path) -> AsyncIterator[Relay]:
    js = nc.jetstream()
    await ensure_streams(js)
    relay = Relay(centres, centres.tracking(), js, FileLease(folder / "relay.lock"))
    async with running(relay.run, relay.stop):
        yield relay


@asynccontextmanager
async def projecting(
    store: ReadStore, url: str, durable: str = "projections", settings: Settings | None = None
) -> AsyncIterator[ProjectionService]:
    client = await nats.connect(url)
    service = ProjectionService(store, client, settings, durable=durable)
    try:
        async with running(service.run, service.stop):
            yield service
    finally:
        await client.close()


def reference(centres: TutoringCentres, folder: Path) -> dict[str, list[tuple[object, ...]]]:
    store = read_store(folder, "reference.sqlite")
    notifications = centres.recorder.select_notifications(1, 1_000_000)
    apply_all(store, [(events.decode(n.state), n.id) for n in notifications])
    return store.dump(store.generation())


@pytest.fixture
def centres(tmp_path: Path) -> TutoringCentres:
    return TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )


async def test_commands_reach_the_read_models_through_the_whole_chain(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    sessions = seed(centres)
    store = read_store(tmp_path)
    async with relaying(centres, nc, tmp_path), projecting(store, nats_server.url) as service:
        await eventually(lambda: _reached(store, centres.position))
        assert store.dump(store.generation()) == reference(centres, tmp_path)
        # Read-your-writes: a new command's position becomes visible.
        john = demo_person("john")
        from shared.tenancy import Actor

        tutor = Actor(user_id=john.id, role=john.role, centre_id="main-campus")
        result = centres.handle(
            tutor,
            MarkAttendance(
                session_id=sessions["Intro to Programming - Live Q&A"],
                records=[
                    AttendanceRecord(
                        student_id=demo_person("michael").id, status=AttendanceStatus.ABSENT
                    )
                ],
            ),
        )
        await eventually(lambda: _reached(store, result.position))
        session = store.get("session", str(sessions["Intro to Programming - Live Q&A"]))
        assert session is not None
        michael = session.doc["students"][str(demo_person("michael").id)]
        assert michael["attendance"] == "ABSENT" and len(michael["catchUps"]) == 1
        assert service.watermark >= result.position


async def _reached(store: ReadStore, position: int) -> bool:
    return store.watermark() >= position


async def test_two_replicas_on_one_durable_consumer_equal_one_replica(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    seed(centres)
    for _ in range(3):  # more history, so the replicas really interleave
        seed_more(centres)
    one, two = read_store(tmp_path, "one.sqlite"), read_store(tmp_path, "two.sqlite")
    small = Settings(batch_size=7)
    async with (
        relaying(centres, nc, tmp_path),
        projecting(one, nats_server.url, "single", small),
        projecting(two, nats_server.url, "pair", small),
        projecting(two, nats_server.url, "pair", small),
    ):
        head = centres.position
        await eventually(lambda: _both(one, two, head))
    assert one.dump(one.generation()) == two.dump(two.generation()) == reference(centres, tmp_path)


async def _both(one: ReadStore, two: ReadStore, head: int) -> bool:
    return one.watermark() >= head and two.watermark() >= head


def seed_more(centres: TutoringCentres) -> None:
    """More history: each student of the live session is marked absent, then excused."""
    from shared.tenancy import Actor

    john = demo_person("john")
    tutor = Actor(user_id=john.id, role=john.role, centre_id="main-campus")
    session = next(
        s for s in centres.recorder.select_notifications(1, 10_000) if s.topic == "SessionStarted"
    )
    session_id = events.decode(session.state).aggregate_id
    for handle in ("jane", "alex", "michael"):
        centres.handle(
            tutor,
            MarkAttendance(
                session_id=session_id,
                records=[
                    AttendanceRecord(
                        student_id=demo_person(handle).id, status=AttendanceStatus.ABSENT
                    )
                ],
            ),
        )
        centres.handle(
            tutor,
            MarkAttendance(
                session_id=session_id,
                records=[
                    AttendanceRecord(
                        student_id=demo_person(handle).id, status=AttendanceStatus.EXCUSED
                    )
                ],
            ),
        )


async def test_an_event_that_keeps_failing_goes_to_the_dead_letter_stream(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    seed(centres)
    store = read_store(tmp_path)
    js = nc.jetstream()
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_has(js, centres.position))
        await js.publish(
            "tp.evt.main-campus.session.bogus.SessionStarted",
            b'{"not": "an event"}',
            headers={"Nats-Msg-Id": "poison-1", "Tp-Notification-Id": "999999"},
        )
        settings = Settings(poison_after=2)
        async with projecting(store, nats_server.url, settings=settings):
            await eventually(lambda: _stream_has(js, 1, "TP_DLQ"), timeout=30)
            await eventually(lambda: _reached(store, centres.position))
    dead = await js.get_msg("TP_DLQ", 1)
    assert dead.subject == "tp.dlq.projections.tp.evt.main-campus.session.bogus.SessionStarted"
    assert dead.headers and "undecodable" in dead.headers["Tp-Dlq-Reason"]
    assert store.dump(store.generation()) == reference(centres, tmp_path)


async def test_events_waiting_for_another_replicas_are_held_in_hand_not_given_back(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    """Another replica holds a session's first event, unapplied, and gives back the events
    after it: those of the session wait in this replica's hands, none is given back to
    JetStream to come round again behind its successors, and once the other replica's event is
    in, every waiting one is applied."""
    seed(centres)
    seed_more(centres)
    store = read_store(tmp_path)
    js = nc.jetstream()
    settings = Settings(batch_size=1000, ack_wait=30)
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_has(js, centres.position))
    await js.add_consumer(STREAM_NAME, consumer_config("pair", settings))
    other = await js.pull_subscribe_bind(durable="pair", stream=STREAM_NAME)
    taken = await other.fetch(centres.position, timeout=5)
    assert len(taken) == centres.position
    decoded = [(events.decode(m.data), notification_id_of(m)) for m in taken]
    aggregates = Counter(str(event.aggregate_id) for event, _ in decoded)
    first = next(
        i for i, (event, _) in enumerate(decoded) if aggregates[str(event.aggregate_id)] >= 5
    )
    apply_all(store, decoded[:first])
    for message in taken[:first]:
        await message.ack_sync()
    for message in taken[first + 1 :]:
        await message.nak()
    naks: list[int] = []

    async def nak_seen(message: Msg) -> None:
        delivery = json.loads(message.data)["consumer_seq"]
        if delivery > len(taken):  # a delivery to this replica, not one given back above
            naks.append(delivery)

    await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.{STREAM_NAME}.pair", cb=nak_seen)
    async with projecting(store, nats_server.url, "pair", settings):
        await eventually(lambda: _holds_some())
        assert store.watermark() < decoded[first][1]
        apply_all(store, [decoded[first]])
        await taken[first].ack_sync()
        await eventually(lambda: _reached(store, centres.position))
        await eventually(lambda: _holds_none())
    await nc.flush()
    assert naks == []
    assert store.dump(store.generation()) == reference(centres, tmp_path)


async def _holds_some() -> bool:
    return (REGISTRY.get_sample_value("tutorpulse_projection_held_events") or 0) > 0


async def _holds_none() -> bool:
    return REGISTRY.get_sample_value("tutorpulse_projection_held_events") == 0


async def _stream_has(js: JetStreamContext, count: int, stream: str = "TP_EVENTS") -> bool:
    try:
        return (await js.stream_info(stream)).state.messages >= count
    except Exception:  # not created yet
        return False


async def test_postgres_read_models_through_the_chain(
    centres: TutoringCentres,
    pg: PostgresServer,
    nats_server: NatsServer,
    nc: Client,
    tmp_path: Path,
) -> None:
    """Two replicas in small batches, so that they contend for the same documents' locks."""
    seed(centres)
    for _ in range(3):
        seed_more(centres)
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    small = Settings(batch_size=7)
    try:
        async with (
            relaying(centres, nc, tmp_path),
            projecting(store, nats_server.url, settings=small),
            projecting(store, nats_server.url, settings=small),
        ):
            await eventually(lambda: _reached(store, centres.position))
        assert store.dump(store.generation()) == reference(centres, tmp_path)
    finally:
        store.close()


@pytest.mark.parametrize("keep_old", [True, False])
async def test_the_live_projection_follows_a_rebuilds_switch_on_postgres(
    keep_old: bool,
    centres: TutoringCentres,
    pg: PostgresServer,
    nats_server: NatsServer,
    nc: Client,
    tmp_path: Path,
) -> None:
    """The service's batches take the generation their last one wrote on trust: the first batch
    after a rebuild (another process) switched generations is refused before it writes and
    applied in the new generation, which then holds everything."""
    seed(centres)
    where = load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    store, rebuilds = open_read_store(where), open_read_store(where)
    try:
        async with (
            relaying(centres, nc, tmp_path),
            projecting(store, nats_server.url, settings=Settings(batch_size=7)),
        ):
            await eventually(lambda: _reached(store, centres.position))
            before = store.generation()
            # With the old generation kept (--keep-old), a batch written there would be lost.
            switched = await asyncio.to_thread(
                rebuild, centres, rebuilds, keep_old=keep_old, settle_timeout=0
            )
            assert switched.generation != before
            seed_more(centres)
            await eventually(lambda: _reached(store, centres.position))
        assert store.generation() == switched.generation
        assert store.dump(switched.generation) == reference(centres, tmp_path)
    finally:
        store.close()
        rebuilds.close()


async def test_kill_9_of_the_projection_service_loses_and_duplicates_nothing(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.support.servers import free_port

    seed(centres)
    for _ in range(15):
        seed_more(centres)
    env = {
        **os.environ,
        "TUTORPULSE_NATS_URL": nats_server.url,
        "TUTORPULSE_READ_STORE": "sqlite",
        "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
        "TUTORPULSE_PROJECTION_BATCH": "5",
        "TUTORPULSE_LOG_LEVEL": "WARNING",
    }

    def start() -> subprocess.Popen[bytes]:
        env["TUTORPULSE_PROJECTIONS_PORT"] = str(free_port())
        with open(tmp_path / "projections.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "services.projections"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_has(nc.jetstream(), centres.position))
        process = start()
        try:
            for pause in (0.9, 0.4, 0.6):
                await asyncio.sleep(pause)
                process.send_signal(signal.SIGKILL)
                process.wait()
                process = start()
            store = read_store(tmp_path)
            await eventually(lambda: _reached(store, centres.position), timeout=40)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert store.dump(store.generation()) == reference(centres, tmp_path)
