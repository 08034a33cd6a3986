"""``python -m services.notifier`` as a process: /health at once, /ready 503 saying what it waits
for until the relay has created the streams, then 200; /metrics; SIGTERM stops it promptly."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shared.messaging import connect, ensure_streams
from tests.support.servers import NatsServer, free_port
from tests.support.service_process import ServiceProcess, run_module, service_env

pytestmark = pytest.mark.integration


async def test_the_notifier_waits_for_the_streams_then_is_ready_and_stops_on_sigterm(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(
        **nats_server.env_for("notifier"),
        TUTORPULSE_READ_STORE="sqlite",
        TUTORPULSE_READ_SQLITE_PATH=str(tmp_path / "read.sqlite"),
        TUTORPULSE_SQLITE_PATH=str(tmp_path / "events.sqlite"),  # the key store's table
        TUTORPULSE_NOTIFIER_PORT=str(port),
    )
    service = ServiceProcess("services.notifier", port, env, tmp_path / "notifier.log").start()
    try:
        body = await service.until_ready_is(503)
        while body["reason"] != "waiting for the relay to create the streams":
            body = await service.until_ready_is(503)
        health = await service.get("/health")
        assert health is not None and health.json() == {"status": "ok", "service": "notifier"}

        relay = await connect(
            nats_server.address, name="test-relay", credentials=nats_server.credentials_for("relay")
        )
        try:
            await ensure_streams(relay.jetstream())
        finally:
            await relay.close()
        ready = await service.until_ready_is(200)
        assert ready["status"] == "ready" and "watermark" in ready["details"]
        async with httpx.AsyncClient() as client:
            metrics = await client.get(f"{service.url}/metrics")
        assert metrics.status_code == 200
        assert "tutorpulse_notifier_deliveries_total" in metrics.text

        code, seconds = service.terminate()
        assert code == 0 and seconds < 5, service.output()
    finally:
        service.stop()


def test_the_notifier_does_not_start_without_a_master_key(tmp_path: Path) -> None:
    """It opens personal texts: outside development mode it needs the master keys, as the
    other services that read them do."""
    env = {
        name: value
        for name, value in service_env(
            TUTORPULSE_READ_SQLITE_PATH=str(tmp_path / "read.sqlite"),
            TUTORPULSE_SQLITE_PATH=str(tmp_path / "events.sqlite"),
            TUTORPULSE_NOTIFIER_PORT=str(free_port()),
        ).items()
        if name != "TUTORPULSE_PRIVACY_MASTER_KEYS"
    }
    finished = run_module("services.notifier", env=env, timeout=60)
    assert finished.returncode != 0
    assert "privacy.misconfigured" in finished.stdout + finished.stderr
