"""The relay against a real nats-server (and PostgreSQL for the crash test)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.command.application import AttendanceMark, TutoringCentres
from services.relay.lease import FileLease, PostgresLease
from services.relay.relay import Relay, message_id
from shared.events import AttendanceStatus, decode, decode_header, subject_for
from shared.eventstore.store import STORE_NAME, postgres_conninfo, store_env
from shared.messaging import ensure_streams
from tests.builders import plan, register_centre, session_id
from tests.integration.streams import read_stream
from tests.support.servers import NatsServer, PostgresServer, free_port

pytestmark = pytest.mark.integration


def published_notifications(centres: TutoringCentres) -> list[int]:
    return [n.id for n in centres.recorder.select_notifications(1, 1_000_000)]


async def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def sqlite_centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    centres = TutoringCentres({"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    yield centres
    centres.close()


async def test_every_committed_event_reaches_jetstream_once_in_order(
    sqlite_centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    alpha = register_centre(sqlite_centres, "alpha")
    beta = register_centre(sqlite_centres, "beta")
    session = session_id(sqlite_centres.schedule_session(alpha["tutor"], plan()).body)
    sqlite_centres.enrol_student(alpha["tutor"], session, alpha["ann"].user_id)
    sqlite_centres.start_session(alpha["tutor"], session)
    from services.command.idempotency import IdempotencyKey

    sqlite_centres.mark_attendance(alpha["tutor"], session, [
        AttendanceMark(alpha["ann"].user_id, AttendanceStatus.ABSENT)],
        idempotency=IdempotencyKey("k", "f"))
    sqlite_centres.schedule_session(beta["tutor"], plan())

    js = nc.jetstream()
    await ensure_streams(js)
    relay = Relay(sqlite_centres, sqlite_centres.tracking(), js,
                  FileLease(tmp_path / "relay.lock"))
    task = asyncio.create_task(relay.run())
    expected = published_notifications(sqlite_centres)

    async def caught_up() -> bool:
        return relay.position >= sqlite_centres.position

    await wait_until(caught_up)
    relay.stop()
    await task

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
    again = Relay(sqlite_centres, sqlite_centres.tracking(), js,
                  FileLease(tmp_path / "relay.lock"))
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


def test_only_one_relay_holds_the_postgres_lease_and_a_dead_holder_frees_it(pg: PostgresServer) -> None:
    conninfo = postgres_conninfo(store_env(pg.env()))
    first, second = PostgresLease(conninfo, "x"), PostgresLease(conninfo, "x")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.confirm()
    first._connection.close()  # type: ignore[union-attr]  # the holder's connection dies
    assert second.try_acquire()
    second.release()
    first.release()


def start_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "services.relay"], env=env,
                                stdout=output, stderr=subprocess.STDOUT)


async def test_kill_9_mid_burst_loses_nothing_and_duplicates_nothing(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    env = {**os.environ, **pg.env(), "TUTORPULSE_NATS_URL": nats_server.url,
           "TUTORPULSE_RELAY_PORT": str(free_port()), "TUTORPULSE_RELAY_BATCH_SIZE": "50",
           "TUTORPULSE_LOG_LEVEL": "WARNING"}
    centres = TutoringCentres(pg.env())
    alpha = register_centre(centres, "alpha")
    stop_writing = threading.Event()

    def write_burst() -> None:
        # Schedules and cancels sessions as fast as one writer can, until told to stop.
        while not stop_writing.is_set():
            session = session_id(centres.schedule_session(alpha["tutor"], plan()).body)
            centres.cancel_session(alpha["tutor"], session, reason="burst")

    writer = threading.Thread(target=write_burst)
    relay = start_relay(env, tmp_path / "relay-1.log")
    try:
        writer.start()
        js = nc.jetstream()
        for kill_after in (1.0, 0.6, 0.9):
            await asyncio.sleep(kill_after)
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            relay = start_relay(env, tmp_path / "relay-2.log")
        await asyncio.sleep(0.5)
        stop_writing.set()
        writer.join()
        expected = published_notifications(centres)
        assert len(expected) > 300, "the burst was too small to prove anything"

        async def caught_up() -> bool:
            try:
                info = await js.stream_info("TP_EVENTS")
            except Exception:  # the stream may not exist yet
                return False
            return info.state.messages >= len(expected)

        await wait_until(caught_up, timeout=60)
        await asyncio.sleep(0.3)
        streamed = await read_stream(js)
        assert [s.notification_id for s in streamed] == expected
        assert len({s.msg_id for s in streamed}) == len(streamed)
        assert all(s.msg_id == f"{STORE_NAME}:{s.notification_id}" for s in streamed)
        stored = {n.id: n.state for n in centres.recorder.select_notifications(1, 1_000_000)}
        assert all(stored[s.notification_id] == s.data for s in streamed)
        assert all(s.subject == subject_for(decode_header(s.data)) for s in streamed)
    finally:
        stop_writing.set()
        if writer.is_alive():
            writer.join()
        relay.terminate()
        relay.wait(timeout=10)
        centres.close()


async def test_a_standby_relay_takes_over_when_the_leader_dies(
    pg: PostgresServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    env = {**os.environ, **pg.env(), "TUTORPULSE_NATS_URL": nats_server.url,
           "TUTORPULSE_LOG_LEVEL": "WARNING"}
    centres = TutoringCentres(pg.env())
    alpha = register_centre(centres, "alpha")
    relays = [start_relay(env | {"TUTORPULSE_RELAY_PORT": str(free_port())}, tmp_path / f"r{i}.log")
              for i in range(2)]
    js = nc.jetstream()
    try:
        async def count_is(n: int):
            async def check() -> bool:
                try:
                    return (await js.stream_info("TP_EVENTS")).state.messages == n
                except Exception:
                    return False
            return check

        await wait_until(await count_is(len(published_notifications(centres))))
        relays[0].send_signal(signal.SIGKILL)
        relays[0].wait()
        centres.schedule_session(alpha["tutor"], plan())
        centres.schedule_session(alpha["tutor"], plan())
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
        store = TutoringCentres(pg.env())
        try:
            store.tracking()
            return store.position
        finally:
            store.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start, range(4))) == [0, 0, 0, 0]
