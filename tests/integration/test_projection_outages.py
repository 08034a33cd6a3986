"""The projection service under outages, on real PostgreSQL and nats-server: it never stops,
says it is unready while a dependency is away, logs the outage and the recovery once each,
and catches up by itself. A replica that dies holding messages hands them over in ack_wait."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest
import structlog
from litestar.testing import TestClient
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from services.command.application import TutoringCentres
from services.command.seed import seed
from services.projections.service import ProjectionService, Settings, consumer_config
from services.projections.service import _Outcome as Outcome
from services.query.app import create_app as query_app
from shared.events import STREAM_NAME
from shared.eventstore import EventStoreSettings
from shared.http.operations import NotReady
from shared.messaging import connect
from shared.messaging.auth import PROJECTIONS_CONSUMER
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import demo_person
from shared.tenancy.tokens import mint
from tests.integration.test_dead_letters import projecting_as_service
from tests.integration.test_projection_service import (
    eventually,
    reference,
    relaying,
    running,
    seed_more,
)
from tests.readside import read_store
from tests.support.servers import NatsServer, PostgresServer, suspend

pytestmark = pytest.mark.integration


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield centres
    centres.close()


async def reached(store: ReadStore, position: int) -> bool:
    """Whether the watermark is at ``position``; not yet while the store cannot be read (its
    pool may still be reconnecting after a restart on a busy machine)."""
    try:
        return store.watermark() >= position
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
        return False


async def unready(service: ProjectionService, dependency: str) -> bool:
    try:
        await service.readiness()
    except NotReady as not_ready:
        return dependency in not_ready.details["unavailable"]
    return False


async def ready(service: ProjectionService) -> bool:
    try:
        await service.readiness()
    except NotReady:
        return False
    return True


async def logged(logs: Sequence[Mapping[str, Any]], dependency: str) -> bool:
    return outage_logs(logs, dependency)[0] > 0


def outage_logs(logs: Sequence[Mapping[str, Any]], dependency: str) -> tuple[int, int]:
    """How many times the service logged that ``dependency`` went away, and came back."""
    return (
        sum(1 for e in logs if e["event"] == f"projections.{dependency}.unavailable"),
        sum(1 for e in logs if e["event"] == f"projections.{dependency}.recovered"),
    )


async def test_a_postgresql_restart_stops_neither_the_projection_nor_the_query_api(
    centres: TutoringCentres,
    pg: PostgresServer,
    nats_server: NatsServer,
    nc: Client,
    tmp_path: Path,
) -> None:
    live = seed(centres)["Intro to Programming - Live Q&A"]
    env = {"TUTORPULSE_READ_STORE": "postgres", **pg.env()}
    store, query_store = (
        open_read_store(load(ReadStoreSettings, env)),
        open_read_store(load(ReadStoreSettings, env)),
    )
    john = demo_person("john")
    token = mint(Actor(user_id=john.id, role=john.role, centre_id="main-campus"))
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/sessions/{live}/control-center"
    stopped = False
    try:
        with (
            TestClient(query_app(query_store, own_resources=False)) as client,
            structlog.testing.capture_logs() as logs,
        ):
            async with (
                relaying(centres, nc, tmp_path),
                projecting_as_service(store, nats_server) as service,
            ):
                await eventually(lambda: reached(store, centres.position))
                assert (
                    await asyncio.to_thread(client.get, url, headers=headers)
                ).status_code == 200

                pg.stop()
                stopped = True
                for _ in range(3):  # the event store is elsewhere: events keep coming meanwhile
                    seed_more(centres)
                await eventually(lambda: unready(service, "readStore"), timeout=30)
                # It tried, and said so.
                await eventually(lambda: logged(logs, "read_store"), timeout=30)
                pg.start()
                stopped = False

                first = await asyncio.to_thread(client.get, url, headers=headers)
                assert first.status_code == 200, first.text  # not the stale pooled connection's 500
                await eventually(lambda: reached(store, centres.position), timeout=60)
                await eventually(lambda: ready(service), timeout=30)
        assert outage_logs(logs, "read_store") == (1, 1)
        assert store.dump(store.generation()) == reference(centres, tmp_path)
    finally:
        if stopped:
            pg.start()
        store.close()
        query_store.close()


async def test_a_nats_restart_during_consumption_does_not_stop_the_projection(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    seed(centres)
    for _ in range(10):
        seed_more(centres)
    store = read_store(tmp_path)
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_holds(nc, centres.position))
    head = centres.position
    with structlog.testing.capture_logs() as logs:
        # One message per fetch: the stream takes hundreds of round trips to consume, so the
        # freeze below finds it part way.
        async with projecting_as_service(store, nats_server, Settings(batch_size=1)) as service:
            await eventually(lambda: reached(store, 1))
            # Frozen: /ready answers unready by its own timeout, not when NATS answers (never,
            # while it is frozen: a readiness that waited for it would not return at all).
            suspend(nats_server.pid)
            try:
                with pytest.raises(NotReady):
                    await asyncio.wait_for(service.readiness(), 30)
            finally:
                os.kill(nats_server.pid, signal.SIGCONT)
            assert store.watermark() < head, "consumed everything before the restart"
            nats_server.kill()
            await eventually(lambda: unready(service, "nats"), timeout=10)
            nats_server.start()  # same port, same JetStream store
            await eventually(lambda: reached(store, head), timeout=60)
            await eventually(lambda: ready(service), timeout=30)
            # Still consuming: new events after the restart arrive too.
            seed_more(centres)
            await eventually(lambda: nc_connected(nc), timeout=30)
            async with relaying(centres, nc, tmp_path):
                await eventually(lambda: reached(store, centres.position), timeout=60)
    # Whether the loop itself met the outage depends on timing (a request made while the client
    # reconnects is answered after it); if it did, it logged each time it went once and its end
    # once: the freeze, the kill, and at most once more while the restarted server accepts
    # connections before its JetStream answers.
    went, came_back = outage_logs(logs, "nats")
    assert went == came_back <= 3
    assert store.dump(store.generation()) == reference(centres, tmp_path)


async def test_a_replica_killed_with_messages_in_hand_hands_them_over_within_ack_wait(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    seed(centres)
    for _ in range(10):
        seed_more(centres)
    js = nc.jetstream()
    store = read_store(tmp_path)
    settings = Settings()
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_holds(nc, 1))
        # An existing deployment's consumer, made with the old 30 s ack_wait…
        await js.add_consumer(
            STREAM_NAME, consumer_config(PROJECTIONS_CONSUMER, Settings(ack_wait=30))
        )
        await eventually(lambda: _stream_holds(nc, centres.position))
    head = centres.position
    # …is updated when a replica starts.
    async with projecting_as_service(store, nats_server, settings):
        await eventually(lambda: _consumer_ack_wait(nc, settings.ack_wait))
        await eventually(lambda: reached(store, head), timeout=60)
    for _ in range(10):  # more history, consumed while one replica holds the start of it
        seed_more(centres)
    doomed = await connect(
        nats_server.address,
        name="doomed-replica",
        credentials=nats_server.credentials_for("projections"),
    )
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_holds(nc, centres.position))
    bound = await doomed.jetstream().pull_subscribe_bind(
        durable=PROJECTIONS_CONSUMER, stream=STREAM_NAME
    )
    held = await bound.fetch(40)
    assert len(held) == 40
    async with projecting_as_service(store, nats_server, settings):
        await doomed.close()  # as good as kill -9: its 40 messages are never acknowledged
        killed = time.monotonic()
        await eventually(lambda: reached(store, centres.position), timeout=60)
        recovered = time.monotonic() - killed
    print(
        f"\nin-flight messages of a killed replica applied {recovered:.2f} s after the kill "
        f"(ack_wait {settings.ack_wait:g} s)"
    )
    assert recovered < 20, "the held messages waited for the old 30 s ack_wait"
    assert store.dump(store.generation()) == reference(centres, tmp_path)


class SlowReplica(ProjectionService):
    """A replica on a slow machine: the worker thread applying its first batch keeps a CPU busy
    in Python (taking the GIL at every switch) until ``release`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applying = threading.Event()
        self.release = threading.Event()
        self.batch_sizes: list[int] = []

    def _apply(
        self, decoded: list[tuple[Any, int] | None], watermark: int | None = None
    ) -> Outcome:
        self.batch_sizes.append(len(decoded))
        if len(self.batch_sizes) == 1:
            self.applying.set()
            while not self.release.is_set():
                sum(range(10_000))
        return super()._apply(decoded, watermark)


async def test_a_long_batch_stays_with_its_replica_while_it_is_applied(
    centres: TutoringCentres,
    pg: PostgresServer,
    nats_server: NatsServer,
    nc: Client,
    tmp_path: Path,
) -> None:
    """A batch of over 200 events applied on PostgreSQL for several times ``ack_wait`` by a busy
    thread: the replica's in-progress acks (a task of the event loop, not of that thread) keep
    every message in its hands, so another replica asking all along is given none of them."""
    seed(centres)
    while centres.position < 200:
        seed_more(centres)
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_holds(nc, centres.position))
    head = (await nc.jetstream().stream_info(STREAM_NAME)).state.messages
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    settings = Settings(batch_size=head)  # the whole stream in one batch
    client = await connect(
        nats_server.address,
        name="slow-replica",
        credentials=nats_server.credentials_for("projections"),
    )
    other = await connect(
        nats_server.address,
        name="other-replica",
        credentials=nats_server.credentials_for("projections"),
    )
    slow = SlowReplica(store, client, settings)
    try:
        async with running(slow.run, slow.stop):
            await eventually(lambda: _is_set(slow.applying))
            assert slow.batch_sizes == [head] and head >= 200
            pulling = await other.jetstream().pull_subscribe_bind(
                durable=PROJECTIONS_CONSUMER, stream=STREAM_NAME
            )
            given: list[Msg] = []
            held_since = time.monotonic()
            # Held for at least four times ack_wait, however slow the machine (a lower bound).
            while time.monotonic() - held_since < 4 * settings.ack_wait:
                with contextlib.suppress(TimeoutError):
                    given += await pulling.fetch(10, timeout=0.25)
            slow.release.set()
            assert given == [], "a message of the batch being applied went to another replica"
            await pulling.unsubscribe()
            await eventually(lambda: reached(store, centres.position), timeout=60)
        info = await nc.jetstream().consumer_info(STREAM_NAME, PROJECTIONS_CONSUMER)
        assert info.num_redelivered == 0 and info.num_ack_pending == 0
        assert store.dump(store.generation()) == reference(centres, tmp_path)
    finally:
        slow.release.set()
        await other.close()
        await client.close()
        store.close()


async def _is_set(event: threading.Event) -> bool:
    return event.is_set()


async def nc_connected(nc: Client) -> bool:
    return bool(nc.is_connected)


async def _stream_holds(nc: Client, count: int) -> bool:
    try:
        return (await nc.jetstream().stream_info(STREAM_NAME)).state.messages >= count
    except Exception:  # not created yet, or NATS is away
        return False


async def _consumer_ack_wait(nc: Client, seconds: float) -> bool:
    # nats-py leaves consumer_info's return unannotated: it is a ConsumerInfo.
    info: ConsumerInfo = await nc.jetstream().consumer_info(STREAM_NAME, PROJECTIONS_CONSUMER)
    return info.config.ack_wait == seconds
