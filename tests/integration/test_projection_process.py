"""``python -m services.projections`` as a process: it waits for NATS and for the relay to
create the streams instead of exiting, saying so in ``/ready``; its ``/ready`` follows NATS going
away and coming back, by itself; SIGTERM stops it promptly whatever it waits for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.messaging import connect, ensure_streams
from tests.support.servers import NatsServer, free_port
from tests.support.service_process import ServiceProcess, service_env

pytestmark = pytest.mark.integration


def projections_process(tmp_path: Path, nats_server: NatsServer) -> ServiceProcess:
    port = free_port()
    env = service_env(
        **nats_server.env_for("projections"),
        TUTORPULSE_READ_STORE="sqlite",
        TUTORPULSE_READ_SQLITE_PATH=str(tmp_path / "read.sqlite"),
        TUTORPULSE_PROJECTIONS_PORT=str(port),
    )
    return ServiceProcess("services.projections", port, env, tmp_path / "projections.log")


async def waiting_for_nats(service: ServiceProcess) -> None:
    """Unready, past opening its read store (which can take a moment on a busy machine), and
    waiting for NATS."""
    body = await service.until_ready_is(503)
    while body["reason"] == "waiting for the read-model store":
        body = await service.until_ready_is(503)
    assert body["reason"] == "waiting for NATS"


def logged(process: ServiceProcess, event: str) -> int:
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    return sum(1 for line in lines if line.get("event") == event)


async def test_the_projection_service_waits_for_nats_and_its_readiness_follows_it(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nats_server.kill()  # not there when the service starts
    service = projections_process(tmp_path, nats_server).start()
    try:
        await waiting_for_nats(service)
        nats_server.start()
        # Connected, but only the relay may create the streams: it waits for them.
        body = await service.until_ready_is(503)
        while body["reason"] == "waiting for NATS":
            body = await service.until_ready_is(503)
        assert body["reason"] == "waiting for the relay to create the streams"
        relay = await connect(
            nats_server.address, name="test-relay", credentials=nats_server.credentials_for("relay")
        )
        try:
            await ensure_streams(relay.jetstream())
        finally:
            await relay.close()
        body = await service.until_ready_is(200)
        assert body["details"] == {
            "consumer": "projections",
            "watermark": 0,
            "deadLettersWaiting": 0,
        }
        nats_server.kill()
        body = await service.until_ready_is(503)
        assert "nats" in body["details"]["unavailable"]
        nats_server.start()
        await service.until_ready_is(200)
        code, _ = service.terminate(timeout=15)
        assert code == 0, service.output()[-3000:]
        assert (
            logged(service, "nats.waiting"),
            logged(service, "nats.waiting_for_streams"),
            logged(service, "nats.error"),
        ) == (1, 1, 0)
        # The outage in between: two lines at most, however many reconnects failed.
        assert logged(service, "nats.unavailable") == logged(service, "nats.recovered") <= 1
    finally:
        service.stop()


async def test_sigterm_while_waiting_for_nats_stops_it_promptly(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nats_server.kill()
    service = projections_process(tmp_path, nats_server).start()
    try:
        await waiting_for_nats(service)
        code, took = service.terminate(timeout=10)
        assert code == 0, service.output()[-3000:]
        assert took < 5, f"SIGTERM took {took:.1f} s"
    finally:
        service.stop()


async def test_sigterm_while_waiting_for_the_streams_stops_it_promptly(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    service = projections_process(tmp_path, nats_server).start()
    try:
        body = await service.until_ready_is(503)
        while body["reason"] != "waiting for the relay to create the streams":
            body = await service.until_ready_is(503)
        code, took = service.terminate(timeout=10)
        assert code == 0, service.output()[-3000:]
        assert took < 5, f"SIGTERM took {took:.1f} s"
    finally:
        service.stop()
