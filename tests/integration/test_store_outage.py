"""PostgreSQL stopped, then frozen, under a running command service (its own process, its own
PostgreSQL): commands answer 503 with Retry-After and /ready says 503, each bounded by the
service's own limits (how long each took is printed; a request that waited on the server would
meet the client's 30 s limit and fail the test, on however busy a machine), the outage and the
recovery are logged once each, nothing is half-written, and the service works again as soon as
PostgreSQL is back, without a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import Centre, register_centre
from tests.support.requests import assert_unavailable, assert_unready, session_body
from tests.support.servers import PostgresServer, free_port, running_postgres, suspend

pytestmark = pytest.mark.integration


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test alone: it is stopped and frozen under its clients."""
    with running_postgres(tmp_path) as server:
        yield server


def postmaster_pid(server: PostgresServer) -> int:
    assert server.control is not None
    return int((server.control.data / "postmaster.pid").read_text().split()[0])


def client_backends(postmaster: int, dbname: str) -> list[int]:
    """The server processes serving client connections to `dbname` (their titles name it)."""
    backends = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == postmaster and f" {dbname} " in title:
            backends.append(int(entry.name))
    return backends


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def freeze(server: PostgresServer) -> int:
    """Hang the server as a frozen host would: the postmaster stops (no new connection is
    accepted, connecting hangs), then every client connection it had is ended. Stopping it
    first means no client can open a fresh connection in between."""
    pid = postmaster_pid(server)
    suspend(pid)
    backends = client_backends(pid, server.dbname)
    assert backends, "the clients had connections to end"
    for backend in backends:
        os.kill(backend, signal.SIGTERM)
    wait_for(lambda: all(gone(backend) for backend in backends), "the client backends end")
    return pid


def log_events(log: Path) -> list[str]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line).get("event", ""))
        except ValueError:
            continue
    return events


def wait_for(condition: Callable[[], bool], what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached")


class CommandService:
    def __init__(self, server: PostgresServer, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            **server.env(),
            "TUTORPULSE_COMMAND_PORT": str(self.port),
            "TUTORPULSE_LOG_LEVEL": "INFO",
            "TUTORPULSE_LOG_FORMAT": "json",
        }
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.command"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

        def up() -> bool:
            assert self.process.poll() is None, log.read_text()[-2000:]
            try:
                return self.http.get("/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "the command service answers /ready")

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def schedule(service: CommandService, centre: Centre) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = service.http.post(
        "/api/v1/sessions",
        json=session_body(starts_in=timedelta(hours=2)),
        headers=centre.auth("tutor"),
    )
    return response, time.monotonic() - started


def ready(service: CommandService) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = service.http.get("/ready")
    return response, time.monotonic() - started


def test_commands_fail_fast_while_postgres_is_down_and_work_again_without_a_restart(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    centres = TutoringCentres(load(EventStoreSettings, own_postgres.env()))
    centre = register_centre(centres, "alpha")
    log = tmp_path / "command.log"
    service = CommandService(own_postgres, log)
    scheduled: list[str] = []
    timings: dict[str, float] = {}
    try:
        response, _ = schedule(service, centre)
        assert response.status_code == 201, response.text
        scheduled.append(response.json()["sessionId"])

        # 1. Stopped: connections refused.
        own_postgres.stop()
        for _ in range(3):
            response, took = schedule(service, centre)
            assert_unavailable(response)
            timings.setdefault("command 503, PostgreSQL stopped", took)
        response, took = ready(service)
        assert_unready(response)
        timings["/ready 503, PostgreSQL stopped"] = took
        own_postgres.start()

        def works_again() -> bool:
            response, _ = schedule(service, centre)
            if response.status_code == 201:
                scheduled.append(response.json()["sessionId"])
                return True
            assert response.status_code == 503, response.text
            return False

        wait_for(works_again, "commands work again after PostgreSQL started", attempts=40)
        wait_for(lambda: "service.recovered" in log_events(log), "the recovery is logged")

        # 2. Frozen: connections dropped, and the server accepts no new one (it hangs).
        pid = freeze(own_postgres)
        try:
            response, took = schedule(service, centre)
            assert_unavailable(response)
            timings["command 503, PostgreSQL frozen"] = took
            response, took = ready(service)
            assert_unready(response)
            timings["/ready 503, PostgreSQL frozen"] = took
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(works_again, "commands work again after PostgreSQL thawed", attempts=40)
        wait_for(lambda: log_events(log).count("service.recovered") == 2, "the recovery is logged")
        assert ready(service)[0].status_code == 200
        assert service.process.poll() is None, "the service kept running"
    finally:
        service.close()

    # One line per outage and one per recovery, however many requests failed meanwhile.
    events = log_events(log)
    assert events.count("service.unavailable") == 2, events
    assert events.count("service.recovered") == 2, events
    assert "request.failed" not in events
    # Nothing half-written: exactly the sessions that were answered 201 were scheduled.
    stored = [
        n
        for n in centres.recorder.select_notifications(1, 100_000)
        if n.topic == "SessionScheduled"
    ]
    assert len(stored) == len(scheduled)
    centres.close()
    print("\n" + "\n".join(f"{what}: {seconds:.3f} s" for what, seconds in timings.items()))
