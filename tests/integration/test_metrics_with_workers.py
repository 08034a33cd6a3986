"""The command service with two uvicorn workers: ``/metrics`` answers the sum over both, whichever
worker answers the scrape (prometheus-client's multiprocess mode), from a directory emptied at
start."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import Centre, register_centre
from tests.support.servers import free_port
from tests.support.service_process import ROOT, service_env

pytestmark = pytest.mark.integration

COMMANDS = "tutorpulse_commands_total"
CENTRE_COMMANDS = "tutorpulse_centre_commands_total"


def wait_for(condition: Callable[[], bool], what: str, attempts: int = 600) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached")


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def counted_per_worker(directory: Path) -> dict[str, float]:
    """Commands counted by each worker's own file (``counter_<pid>.db``)."""
    counted: dict[str, float] = {}
    for file in sorted(directory.glob("counter_*.db")):
        families = MultiProcessCollector.merge([str(file)])  # type: ignore[no-untyped-call]
        value = sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == COMMANDS and sample.labels.get("outcome") == "ok"
        )
        if value:
            counted[file.stem] = value
    return counted


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[Centre, Path]]:
    database = tmp_path / "events.sqlite"
    centres = TutoringCentres(load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(database)}))
    try:
        yield register_centre(centres, "alpha"), database
    finally:
        centres.close()


def session_body(number: int) -> dict[str, str]:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, hours=number)
    return {
        "title": f"Fractions {number}",
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(minutes=50)).isoformat(),
        "mode": "ONLINE",
        "meetingLink": "https://meet.example.org/fractions",
    }


def test_metrics_of_two_workers_add_up_whichever_worker_answers(
    centre: tuple[Centre, Path], tmp_path: Path
) -> None:
    alpha, database = centre
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"a value left by an earlier run")  # emptied at start
    port = free_port()
    log = tmp_path / "command.log"
    env = service_env(
        TUTORPULSE_COMMAND_PORT=str(port),
        TUTORPULSE_COMMAND_WORKERS="2",
        TUTORPULSE_COMMAND_METRICS_DIR=str(metrics),
        TUTORPULSE_SQLITE_PATH=str(database),
        TUTORPULSE_CREATE_TABLES="yes",
    )
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.command"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    # No keep-alive: every request is a new connection, which either worker may accept.
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                return http.get("/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "the command service answers /ready")
        assert not (metrics / "counter_1.db").exists()

        # Commands until both workers have counted some (each keeps its own file).
        sent = 0
        while len(counted_per_worker(metrics)) < 2:
            assert sent < 200, f"one worker took all {sent} commands"
            response = http.post(
                "/api/v1/sessions", json=session_body(sent), headers=alpha.auth("tutor")
            )
            assert response.status_code == 201, response.text
            sent += 1
        refused = http.post("/api/v1/sessions", json={}, headers=alpha.auth("tutor"))
        assert refused.status_code in (400, 422), refused.text
        assert sum(counted_per_worker(metrics).values()) == sent

        # Every scrape, whichever worker answers it, reads the total.
        for _ in range(8):
            text = http.get("/metrics").text
            assert samples(text, COMMANDS, outcome="ok") == sent
            assert samples(text, CENTRE_COMMANDS, centre="alpha", outcome="ok") == sent
            assert samples(text, CENTRE_COMMANDS, centre="alpha", outcome="rejected") == 1
    finally:
        http.close()
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0, log.read_text()[-3000:]
