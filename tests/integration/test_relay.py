"""The relay against a real nats-server (and PostgreSQL for the crash test)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.command.application import TutoringCentres
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EnrolStudent, StartSession
from services.relay.lease import FileLease, PostgresLease
from services.relay.relay import TRACKING_NAME, Relay, message_id
from shared.events import AttendanceStatus, decode, decode_header, subject_for
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import STORE_NAME, postgres_conninfo, store_env
from shared.messaging import ensure_streams
from shared.settings import load
from tests.builders import plan, register_centre, session_id
from tests.integration.restarts import frozen, restart_nats
from tests.integration.streams import read_stream
from tests.support.burst import Burst
from tests.support.servers import NatsServer, PostgresServer, free_port, running_postgres

pytestmark = pytest.mark.integration


def published_notifications(centres: TutoringCentres) -> list[int]:
    return [n.id for n in centres.recorder.select_notifications(1, 1_000_000)]


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def sqlite_centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield centres
    centres.close()


async def test_every_committed_event_reaches_jetstream_once_in_order(
    sqlite_centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    alpha = register_centre(sqlite_centres, "alpha")
    beta = register_centre(sqlite_centres, "beta")
    session = session_id(sqlite_centres.handle(alpha["tutor"], plan()).body)
    sqlite_centres.handle(
        alpha["tutor"], EnrolStudent(session_id=session, student_id=alpha["ann"].user_id)
    )
    sqlite_centres.handle(alpha["tutor"], StartSession(session_id=session))
    from services.command.idempotency import IdempotencyKey

    sqlite_centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=session,
            records=[
                AttendanceRecord(student_id=alpha["ann"].user_id, status=AttendanceStatus.ABSENT)
            ],
        ),
        idempotency=IdempotencyKey("k", "f"),
    )
    sqlite_centres.handle(beta["tutor"], plan())

    js = nc.jetstream()
    await ensure_streams(js)
    relay = Relay(sqlite_centres, sqlite_centres.tracking(), js, FileLease(tmp_path / "relay.lock"))
    task = asyncio.create_task(relay.run())
    expected = published_notifications(sqlite_centres)

    async def caught_up() -> bool:
        return relay.position >= sqlite_centres.position

    await wait_until(caught_up)
    relay.stop()
    await task
    # The position relayed is recorded.
    assert sqlite_centres.tracking().max_tracking_id(TRACKING_NAME) == sqlite_centres.position

    streamed = await read_stream(js)
    assert [s.notification_id for s in streamed] == expected
    assert [s.msg_id for s in streamed] == [message_id(n) for n in expected]
    for item in streamed:
        event = decode(item.data)
        assert item.subject == subject_for(event)
        assert item.subject.startswith(f"tp.evt.{event.centre_id}.")
    assert {s.subject.split(".")[2] for s in streamed} == {"alpha", "beta"}
    assert sum(".receipt." in s.subject for s in streamed) == 1
    # A restarted relay resumes from its recorded position and publishes nothing again.
    again = Relay(sqlite_centres, sqlite_centres.tracking(), js, FileLease(tmp_path / "relay.lock"))
    task = asyncio.create_task(again.run())
    await wait_until(lambda: _true_after(0.3))
    again.stop()
    await task
    assert len(await read_stream(js)) == len(expected)


async def _true_after(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


def test_only_one_relay_holds_the_file_lease(tmp_path: Path) -> None:
    first, second = FileLease(tmp_path / "x.lock"), FileLease(tmp_path / "x.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


def test_only_one_relay_holds_the_postgres_lease_and_a_dead_holder_frees_it(
    pg: PostgresServer,
) -> None:
    conninfo = postgres_conninfo(store_env(load(EventStoreSettings, pg.env())))
    first, second = PostgresLease(conninfo, "x"), PostgresLease(conninfo, "x")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.confirm()
    assert first._connection is not None
    first._connection.close()  # the holder's connection dies
    # The server frees the lock when it has ended the holder's backend, a moment later.
    for _ in range(200):
        if second.try_acquire():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the dead holder's lock was never freed")
    second.release()
    first.release()


def start_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "services.relay"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def relay_env(pg: PostgresServer, nats_server: NatsServer, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        **pg.env(),
        "TUTORPULSE_NATS_URL": nats_server.url,
        "TUTORPULSE_RELAY_PORT": str(free_port()),
        "TUTORPULSE_LOG_LEVEL": "INFO",
        **{f"TUTORPULSE_RELAY_{name.upper()}": value for name, value in settings.items()},
    }


async def store_head(centres: TutoringCentres) -> int:
    return await asyncio.to_thread(lambda: centres.position)


async def streamed_count(js: JetStreamContext) -> int:
    try:
        return (await js.stream_info("TP_EVENTS")).state.messages
    except Exception:  # the stream may not exist yet, or NATS is restarting
        return -1


def at_least(value: Callable[[], Awaitable[int]], target: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await value() >= target

    return check


async def assert_streamed_exactly_once_in_order(
    js: JetStreamContext, centres: TutoringCentres, timeout: float = 60
) -> None:
    expected = published_notifications(centres)

    async def caught_up() -> bool:
        return await streamed_count(js) >= len(expected)

    await wait_until(caught_up, timeout=timeout)
    streamed = await read_stream(js)
    assert [s.notification_id for s in streamed] == expected
    assert len({s.msg_id for s in streamed}) == len(streamed)
    assert all(s.msg_id == f"{STORE_NAME}:{s.notification_id}" for s in streamed)
    stored = {n.id: n.state for n in centres.recorder.select_notifications(1, 1_000_000)}
    assert all(stored[s.notification_id] == s.data for s in streamed)
    assert all(s.subject == subject_for(decode_header(s.data)) for s in streamed)


async def test_kill_9_mid_burst_loses_nothing_and_duplicates_nothing(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    """Driven by counts, not time: each kill comes once more events are in the store and the
    relay has published some of them since it started, so the writer and the relay are both
    mid-flight whatever the machine's speed."""
    env = relay_env(pg, nats_server, batch_size="50")
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    js = nc.jetstream()
    relay = start_relay(env, tmp_path / "relay-1.log")
    try:
        with Burst(centres) as burst:
            for kill in range(1, 4):
                await wait_until(at_least(lambda: store_head(centres), 150 * kill), timeout=60)
                streamed = await streamed_count(js)
                await wait_until(at_least(lambda: streamed_count(js), streamed + 60), timeout=60)
                relay.send_signal(signal.SIGKILL)
                relay.wait()
                relay = start_relay(env, tmp_path / f"relay-{kill + 1}.log")
            await wait_until(at_least(lambda: store_head(centres), 600), timeout=60)
            burst.stop()
        assert len(published_notifications(centres)) > 300
        await assert_streamed_exactly_once_in_order(js, centres)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        centres.close()


async def relay_ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    try:
        response = await http.get("/ready")
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


async def relay_lag(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    match = re.search(r"^tutorpulse_relay_lag_events(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
    assert match, "the relay exports its lag"
    return float(match.group(1))


async def test_a_nats_restart_mid_burst_is_recovered_alone_with_every_event_once_in_order(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    env = relay_env(pg, nats_server, batch_size="100", ack_timeout_seconds="1", stall_seconds="2")
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    js = nc.jetstream()
    relay = start_relay(env, tmp_path / "relay.log")
    port = env["TUTORPULSE_RELAY_PORT"]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def ready_is(status: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    return (await relay_ready(http))[0] == status

                return check

            await wait_until(await ready_is(200))
            with Burst(centres) as burst:
                await wait_until(at_least(lambda: streamed_count(js), 200), timeout=60)
                before = await store_head(centres)
                restart_started = time.monotonic()
                nats_server.kill()
                # While NATS is gone: not ready, and the lag grows with what is written.
                await wait_until(await ready_is(503))
                unready_after = time.monotonic() - restart_started
                status, body = await relay_ready(http)
                assert status == 503 and "NATS" in body["reason"], body
                await wait_until(at_least(lambda: store_head(centres), before + 100), timeout=60)

                async def lag_grows() -> bool:
                    return await relay_lag(http) >= 50

                await wait_until(lag_grows)
                restart_nats(nats_server)
                restarted = time.monotonic()
                await wait_until(at_least(lambda: store_head(centres), before + 300), timeout=60)
                burst.stop()
            head = await store_head(centres)

            async def relayed_everything() -> bool:
                status, body = await relay_ready(http)
                return status == 200 and body["details"]["position"] >= head

            await wait_until(relayed_everything, timeout=60)
            recovered_after = time.monotonic() - restarted
            assert relay.poll() is None, "the relay recovered without a restart"
            await assert_streamed_exactly_once_in_order(js, centres)
            assert await relay_lag(http) == 0
        print(
            f"\nrelay /ready 503 {unready_after:.2f} s after NATS was killed; relayed "
            f"everything {recovered_after:.2f} s after NATS started again"
        )
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        centres.close()


async def test_the_relay_rides_out_a_postgres_restart(
    nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    """Its lease connection dies with the server: the relay loses the lease, waits for
    PostgreSQL, takes the lease again and relays what was written after the restart."""
    with running_postgres(tmp_path / "pg") as own:
        env = relay_env(own, nats_server)
        centres = TutoringCentres(load(EventStoreSettings, own.env()))
        alpha = register_centre(centres, "alpha")
        js = nc.jetstream()
        log = tmp_path / "relay.log"
        relay = start_relay(env, log)
        try:
            written = len(published_notifications(centres))
            await wait_until(at_least(lambda: streamed_count(js), written))
            own.stop()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{env['TUTORPULSE_RELAY_PORT']}", timeout=5
            ) as http:

                async def unready() -> bool:
                    return (await relay_ready(http))[0] == 503

                await wait_until(unready)
                own.start()

                async def led_again() -> bool:
                    text = log.read_text()
                    return "relay.lease_lost" in text and text.count('"relay.leading"') >= 2

                await wait_until(led_again)
                centres.handle(alpha["tutor"], plan())
                centres.handle(alpha["tutor"], plan())
                await assert_streamed_exactly_once_in_order(js, centres)

                async def ready() -> bool:
                    return (await relay_ready(http))[0] == 200

                await wait_until(ready)
            assert relay.poll() is None, "the relay survived the restart"
        finally:
            relay.terminate()
            relay.wait(timeout=10)
            centres.close()


async def test_a_standby_relay_takes_over_when_the_leader_dies(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **pg.env(),
        "TUTORPULSE_NATS_URL": nats_server.url,
        "TUTORPULSE_LOG_LEVEL": "WARNING",
    }
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    alpha = register_centre(centres, "alpha")
    relays = [
        start_relay(env | {"TUTORPULSE_RELAY_PORT": str(free_port())}, tmp_path / f"r{i}.log")
        for i in range(2)
    ]
    js = nc.jetstream()
    try:

        async def count_is(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                try:
                    return (await js.stream_info("TP_EVENTS")).state.messages == n
                except Exception:
                    return False

            return check

        await wait_until(await count_is(len(published_notifications(centres))))
        relays[0].send_signal(signal.SIGKILL)
        relays[0].wait()
        centres.handle(alpha["tutor"], plan())
        centres.handle(alpha["tutor"], plan())
        await wait_until(await count_is(len(published_notifications(centres))))
        streamed = await read_stream(js)
        assert [s.notification_id for s in streamed] == published_notifications(centres)
    finally:
        for relay in relays:
            if relay.poll() is None:
                relay.terminate()
                relay.wait(timeout=10)
        centres.close()


async def test_replicas_starting_together_all_apply_the_stream_definitions(nc: Client) -> None:
    js = nc.jetstream()
    await asyncio.gather(*[ensure_streams(js) for _ in range(4)])
    assert (await js.stream_info("TP_EVENTS")).config.duplicate_window == 120


def test_replicas_starting_together_on_an_empty_postgres_all_come_up(pg: PostgresServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def start(_: int) -> int:
        store = TutoringCentres(load(EventStoreSettings, pg.env()))
        try:
            store.tracking()
            return store.position
        finally:
            store.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start, range(4))) == [0, 0, 0, 0]


async def test_a_frozen_nats_makes_the_relay_unready_and_it_catches_up_once_thawed(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    """A frozen server keeps the connection open and never acks: the relay gives up on the
    batch after its ack timeout, says so on /ready, and publishes it again once NATS answers."""
    env = relay_env(pg, nats_server, batch_size="100", ack_timeout_seconds="1", stall_seconds="2")
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    js = nc.jetstream()
    relay = start_relay(env, tmp_path / "relay.log")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{env['TUTORPULSE_RELAY_PORT']}", timeout=5
        ) as http:

            async def ready_is(status: int) -> bool:
                return (await relay_ready(http))[0] == status

            await wait_until(lambda: ready_is(200))
            with Burst(centres) as burst:
                await wait_until(at_least(lambda: streamed_count(js), 100), timeout=60)
                before = await store_head(centres)
                with frozen(nats_server):
                    await wait_until(lambda: ready_is(503))
                    await wait_until(
                        at_least(lambda: store_head(centres), before + 100), timeout=60
                    )

                    async def lag_grows() -> bool:
                        return await relay_lag(http) >= 50

                    await wait_until(lag_grows)
                burst.stop()
            head = await store_head(centres)

            async def relayed_everything() -> bool:
                status, body = await relay_ready(http)
                return status == 200 and body["details"]["position"] >= head

            await wait_until(relayed_everything, timeout=60)
            assert relay.poll() is None
            await assert_streamed_exactly_once_in_order(js, centres)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        centres.close()
