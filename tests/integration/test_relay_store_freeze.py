"""PostgreSQL frozen (SIGSTOP: its connections stay open and nothing answers) under a running
relay with events flowing: the relay turns unready within its store timeout, logs the outage
once however often it retries, lets its lease go, and once PostgreSQL runs again it leads again
by itself and relays every event written before, during and after, once each and in order."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.relay.lease import LeaseLost, PostgresLease
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import postgres_conninfo, store_env
from shared.settings import load
from tests.integration.test_relay import (
    assert_streamed_exactly_once_in_order,
    at_least,
    relay_env,
    relay_ready,
    start_relay,
    store_head,
    streamed_count,
    wait_until,
)
from tests.integration.test_store_outage import postmaster_pid
from tests.support.burst import Burst
from tests.support.servers import NatsServer, PostgresServer, running_postgres, suspend

pytestmark = pytest.mark.integration

STORE_TIMEOUT = "2"
"""TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS for the relay under test."""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


@contextmanager
def frozen_postgres(server: PostgresServer) -> Iterator[None]:
    """Every process of the server stopped, the postmaster first (so that it forks no new
    backend meanwhile): connections stay open, the kernel still accepts new ones into the
    listening socket's queue, and nothing answers. All run again when the block ends."""
    postmaster = postmaster_pid(server)
    suspend(postmaster)
    stopped = [postmaster]
    try:
        for child in children_of(postmaster):
            try:
                suspend(child)
            except (OSError, AssertionError):  # it ended meanwhile
                continue
            stopped.append(child)
        yield
    finally:
        for pid in reversed(stopped):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def waiting_connections(port: int) -> int:
    """Connections the kernel accepted on ``port``'s listening socket that the server has not
    taken yet (its accept queue): while the server is frozen, one per attempt to connect."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return int(queues.split(":")[1], 16)
    return 0


def log_events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def names(log: Path) -> list[str]:
    return [str(entry.get("event", "")) for entry in log_events(log)]


async def test_a_frozen_postgres_makes_the_relay_unready_and_it_relays_everything_once_thawed(
    nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    with running_postgres(tmp_path / "pg") as own:
        env = relay_env(
            own,
            nats_server,
            batch_size="50",
            store_timeout_seconds=STORE_TIMEOUT,
        ) | {"TUTORPULSE_LOG_FORMAT": "json"}
        centres = TutoringCentres(load(EventStoreSettings, own.env()))
        js = nc.jetstream()
        log = tmp_path / "relay.log"
        relay = start_relay(env, log)
        port = env["TUTORPULSE_RELAY_PORT"]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

                def ready_is(status: int, leader: bool) -> Callable[[], Awaitable[bool]]:
                    async def check() -> bool:
                        answer, body = await relay_ready(http)
                        return answer == status and body.get("details", {}).get("leader") is leader

                    return check

                async def unready() -> bool:
                    return (await relay_ready(http))[0] == 503

                await wait_until(ready_is(200, True))
                with Burst(centres, counting_failures=True) as writer:
                    await wait_until(at_least(lambda: streamed_count(js), 100), timeout=60)
                    with frozen_postgres(own):
                        frozen_at = time.monotonic()
                        # Unready, saying why, and no longer leading: the lease is let go.
                        await wait_until(unready, timeout=30)
                        unready_after = time.monotonic() - frozen_at
                        await wait_until(ready_is(503, False), timeout=30)
                        let_go_after = time.monotonic() - frozen_at
                        status, body = await relay_ready(http)
                        assert status == 503 and "event store" in body["reason"], body
                        # It keeps trying (each attempt waits in the frozen server's queue),
                        # and has said so once.
                        await wait_until(
                            lambda: _true(waiting_connections(own.port) >= 3), timeout=60
                        )
                        assert names(log).count("relay.store.unavailable") == 1
                        assert relay.poll() is None
                    thawed = time.monotonic()
                    thawed_at = await store_head(centres)
                    # Leading and ready again by itself, and relaying what is written now.
                    await wait_until(ready_is(200, True), timeout=60)
                    ready_after = time.monotonic() - thawed
                    await wait_until(
                        at_least(lambda: store_head(centres), thawed_at + 100), timeout=60
                    )
                    writer.stop()
                head = await store_head(centres)

                async def relayed_everything() -> bool:
                    status, body = await relay_ready(http)
                    return status == 200 and body["details"]["position"] >= head

                await wait_until(relayed_everything, timeout=60)
                await assert_streamed_exactly_once_in_order(js, centres)
                assert relay.poll() is None, "the relay recovered without a restart"
        finally:
            relay.terminate()
            relay.wait(timeout=10)
            centres.close()

    events = names(log)
    # One line for the outage and one for its end, however many calls failed in between.
    assert events.count("relay.store.unavailable") == 1, events
    assert events.count("relay.store.recovered") == 1, events
    assert events.count("relay.lease_lost") == 1, events
    assert "relay.failed" not in events
    # No line from psycopg's own cancellation of a statement (it would wait on the frozen
    # server for up to ten seconds): a statement not answered in time is aborted instead.
    assert not [e for e in log_events(log) if e.get("logger") == "psycopg"], events
    print(
        f"\nrelay /ready 503 {unready_after:.2f} s and lease let go {let_go_after:.2f} s "
        f"after PostgreSQL froze (store timeout {STORE_TIMEOUT} s); ready and leading "
        f"{ready_after:.2f} s after it thawed; {writer.failed} commands failed when it thawed"
    )


async def _true(value: bool) -> bool:
    return value


def test_a_lease_check_blocked_on_a_frozen_postgres_fails_when_abandoned_and_the_lock_is_freed(
    tmp_path: Path,
) -> None:
    """What the relay does when a check of its lease is not answered in time: abandoning the
    lease fails the blocked check at once (LeaseLost), and the server frees the lock as soon as
    it runs again, so another relay can take it."""
    with running_postgres(tmp_path / "pg") as own:
        conninfo = postgres_conninfo(store_env(load(EventStoreSettings, own.env())))
        holder, standby = PostgresLease(conninfo, "x"), PostgresLease(conninfo, "x")
        try:
            assert holder.try_acquire()
            assert holder._connection is not None
            # The server ends the session of a holder that vanished from the network in
            # seconds, not after the system's two hours.
            shown = holder._connection.execute("SHOW tcp_keepalives_idle").fetchone()
            assert shown is not None and shown[0] == "5"
            assert not standby.try_acquire()
            outcome: list[BaseException | None] = []

            def check() -> None:
                try:
                    holder.confirm()
                    outcome.append(None)
                except BaseException as error:
                    outcome.append(error)

            with frozen_postgres(own):
                checking = threading.Thread(target=check)
                checking.start()
                wait_until_sync(lambda: _waiting_on_its_socket(checking), "the check waits")
                holder.abandon()
                checking.join(timeout=30)
                assert not checking.is_alive(), "the check still waits on the frozen server"
            assert len(outcome) == 1 and isinstance(outcome[0], LeaseLost), outcome
            # Once the server runs, it sees the holder's connection closed and frees the lock.
            wait_until_sync(standby.try_acquire, "the standby takes the lease")
        finally:
            standby.release()
            holder.release()


def _waiting_on_its_socket(thread: threading.Thread) -> bool:
    """The thread is blocked in the kernel waiting for its socket (poll or select), not
    running nor waiting for the GIL."""
    try:
        return "poll" in Path(f"/proc/self/task/{thread.native_id}/wchan").read_text()
    except OSError:
        return False


def wait_until_sync(condition: Callable[[], bool], what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached")
