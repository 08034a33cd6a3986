"""``python -m services.relay`` as a process: it answers its probes while NATS is away at start
(so Kubernetes does not restart it for ever), becomes ready by itself when NATS comes, stops
promptly on SIGTERM whatever it is waiting for, and refuses to run without a NATS user."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nats
import pytest

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import register_centre
from tests.integration.streams import read_stream
from tests.support.servers import NatsServer, free_port
from tests.support.service_process import ServiceProcess, service_env

pytestmark = pytest.mark.integration


def relay_process(tmp_path: Path, **settings: str) -> ServiceProcess:
    port = free_port()
    env = service_env(
        TUTORPULSE_STORE="sqlite",
        TUTORPULSE_SQLITE_PATH=str(tmp_path / "events.sqlite"),
        TUTORPULSE_RELAY_PORT=str(port),
        **settings,
    )
    return ServiceProcess("services.relay", port, env, tmp_path / "relay.log")


def logged(process: ServiceProcess, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def test_the_relay_answers_its_probes_while_nats_is_away_and_relays_once_it_comes(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    register_centre(centres, "alpha")  # events waiting to be relayed
    nats_server.kill()
    relay = relay_process(tmp_path, **nats_server.env_for("relay")).start()
    try:
        body = await relay.until_ready_is(503)
        assert body["reason"] == "waiting for NATS"
        assert await relay.health() == 200
        nats_server.start()
        body = await relay.until_ready_is(200)
        deadline = time.monotonic() + 20
        while not body["details"]["leader"]:  # ready first; the lease comes with its first round
            assert time.monotonic() < deadline, f"the relay never took the lease: {body}"
            await asyncio.sleep(0.05)
            body = await relay.until_ready_is(200)
        # It set the streams up and relayed what waited.
        harness = await nats.connect(nats_server.url)
        try:
            deadline = time.monotonic() + 20
            while len(await read_stream(harness.jetstream())) < centres.position:
                assert time.monotonic() < deadline, "the waiting events were not relayed"
                await asyncio.sleep(0.05)
        finally:
            await harness.close()
        code, _ = relay.terminate()
        assert code == 0, relay.output()[-3000:]
        # "Waiting for NATS" once, however many attempts failed meanwhile (one every 0.5 s).
        assert len(logged(relay, "nats.waiting")) == 1
        assert len(logged(relay, "nats.connected")) == 1
        assert not logged(relay, "nats.error") and not logged(relay, "nats.unavailable")
    finally:
        relay.stop()
        centres.close()


async def test_sigterm_while_waiting_for_nats_stops_the_relay_promptly(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nats_server.kill()
    relay = relay_process(tmp_path, **nats_server.env_for("relay")).start()
    try:
        await relay.until_ready_is(503)
        code, took = relay.terminate(timeout=10)
        assert code == 0, relay.output()[-3000:]
        assert took < 5, f"SIGTERM took {took:.1f} s"
        assert logged(relay, "relay.stopped")
    finally:
        relay.stop()


async def test_a_relay_without_a_nats_user_says_so_and_is_never_ready(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    relay = relay_process(tmp_path, TUTORPULSE_NATS_URL=nats_server.address).start()
    try:
        body = await relay.until_ready_is(503)
        while body["reason"] == "waiting for NATS":  # until it has tried
            body = await relay.until_ready_is(503)
        assert body["reason"] == "no NATS user configured"
        assert await relay.health() == 200
        assert len(logged(relay, "nats.no_user")) == 1
        assert not logged(relay, "nats.authorization_refused")  # it did not try as anyone
        code, _ = relay.terminate()
        assert code == 0
    finally:
        relay.stop()
