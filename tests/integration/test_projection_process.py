"""``python -m services.projections`` as a process: it waits for NATS instead of exiting, and
its ``/ready`` follows NATS going away and coming back, by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_projection_service import eventually
from tests.support.servers import NatsServer, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "services.projections"], env=env, cwd=ROOT,
                                stdout=output, stderr=subprocess.STDOUT)


async def test_the_projection_service_waits_for_nats_and_its_readiness_follows_it(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, **nats_server.env_for("projections"), "TUTORPULSE_READ_STORE": "sqlite",
           "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
           "TUTORPULSE_PROJECTIONS_PORT": str(port), "TUTORPULSE_LOG_LEVEL": "WARNING"}
    nats_server.kill()  # not there when the service starts
    process = start_service(env, tmp_path / "projections.log")
    seen: dict[str, Any] = {}

    async def ready_is(status: int) -> bool:
        assert process.poll() is None, (tmp_path / "projections.log").read_text()[-3000:]
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"http://127.0.0.1:{port}/ready")
        except httpx.TransportError:  # not listening yet
            return False
        seen["body"] = response.json()
        return response.status_code == status

    try:
        await eventually(lambda: ready_is(503), timeout=30)
        nats_server.start()
        await eventually(lambda: ready_is(200), timeout=30)
        assert seen["body"]["details"] == {
            "consumer": "projections", "watermark": 0, "deadLettersWaiting": 0}
        nats_server.kill()
        await eventually(lambda: ready_is(503), timeout=30)
        assert "nats" in seen["body"]["details"]["unavailable"]
        nats_server.start()
        await eventually(lambda: ready_is(200), timeout=30)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0
