"""The live gateway's /ready follows NATS: 503 while it is killed or frozen (a frozen server
keeps the connection open), 200 again by itself once it answers. Started while NATS is away it
serves its probes (and refuses websockets with 1013) until it connects, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import websockets

from services.live_gateway.app import TRY_AGAIN_LATER, create_app
from services.live_gateway.hub import Settings
from shared.tenancy import Actor, Role
from shared.tenancy.tokens import mint
from tests.integration.cluster import serve
from tests.integration.restarts import frozen, restart_nats
from tests.readside import read_store
from tests.support.servers import NatsServer, free_port
from tests.support.service_process import ServiceProcess, service_env

pytestmark = pytest.mark.integration


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> float:
    """Wait for ``condition``; return how long it took."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < timeout, f"{what}: not reached"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_ready_follows_nats_through_a_kill_a_restart_and_a_freeze(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    store = read_store(tmp_path)
    app = create_app(store, nats_server.url, Settings(resync_seconds=60), own_store=True)
    server, task, port = await serve(app)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def status_is(code: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    return (await http.get("/ready")).status_code == code

                return check

            await until(await status_is(200), "ready at start")
            nats_server.kill()
            await until(await status_is(503), "unready once NATS is gone")
            assert "NATS" in (await http.get("/ready")).json()["reason"]
            restart_nats(nats_server)
            back = await until(await status_is(200), "ready again after the restart")
            with frozen(nats_server):
                started = time.monotonic()
                response = await http.get("/ready")
                took = time.monotonic() - started
                assert response.status_code == 503, response.text
                # Answered at all: the client's own limit (5 s) fails a /ready that waits on
                # the frozen server; how long it took is printed.
                assert "does not answer" in response.json()["reason"]
            await until(await status_is(200), "ready again after the freeze")
            # A fresh ping is answered too: the client still reads its connection (nats-py
            # stops reading for good if a ping's wait is cancelled and its PONG comes later).
            for _ in range(3):
                assert (await http.get("/ready")).status_code == 200
        print(
            f"\ngateway ready again {back:.2f} s after NATS restarted; /ready answered "
            f"{took:.2f} s into a freeze"
        )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


STOPPED = (0, -signal.SIGTERM)
"""uvicorn stops cleanly on SIGTERM, then ends by the signal it was sent."""


def gateway_process(tmp_path: Path, **settings: str) -> ServiceProcess:
    port = free_port()
    env = service_env(
        TUTORPULSE_READ_STORE="sqlite",
        TUTORPULSE_READ_SQLITE_PATH=str(tmp_path / "read.sqlite"),
        TUTORPULSE_SQLITE_PATH=str(tmp_path / "events.sqlite"),  # the key store's table
        TUTORPULSE_GATEWAY_PORT=str(port),
        **settings,
    )
    return ServiceProcess("services.live_gateway", port, env, tmp_path / "gateway.log")


async def test_started_while_nats_is_away_it_serves_probes_and_connects_later(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    read_store(tmp_path).close()  # the read models exist (the projections made them)
    nats_server.kill()
    gateway = gateway_process(tmp_path, **nats_server.env_for("gateway")).start()
    try:
        assert (await gateway.until_ready_is(503))["reason"] == "waiting for NATS"
        assert await gateway.health() == 200
        async with websockets.connect(
            f"ws://127.0.0.1:{gateway.port}/live",
            additional_headers={"Authorization": f"Bearer {mint(demo_actor())}"},
            ping_interval=None,
        ) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == TRY_AGAIN_LATER
        nats_server.start()
        await gateway.until_ready_is(200)
        code, _ = gateway.terminate(timeout=15)
        assert code in STOPPED, gateway.output()[-3000:]
        assert gateway.output().count('"nats.waiting"') == 1
    finally:
        gateway.stop()


async def test_sigterm_while_waiting_for_nats_stops_the_gateway_promptly(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    read_store(tmp_path).close()
    nats_server.kill()
    gateway = gateway_process(tmp_path, **nats_server.env_for("gateway")).start()
    try:
        await gateway.until_ready_is(503)
        code, took = gateway.terminate(timeout=10)
        assert code in STOPPED, gateway.output()[-3000:]
        assert took < 5, f"SIGTERM took {took:.1f} s"
    finally:
        gateway.stop()


async def test_a_gateway_without_a_nats_user_says_so(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    read_store(tmp_path).close()
    gateway = gateway_process(tmp_path, TUTORPULSE_NATS_URL=nats_server.address).start()
    try:
        body = await gateway.until_ready_is(503)
        while body["reason"] == "waiting for NATS":
            body = await gateway.until_ready_is(503)
        assert body["reason"] == "no NATS user configured"
        assert gateway.output().count('"nats.no_user"') == 1
    finally:
        gateway.stop()


def demo_actor() -> Actor:
    return Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="main-campus")


@pytest.mark.parametrize(("setting", "offered"), [(None, False), ("1", True)])
async def test_compression_is_offered_only_when_set(
    nats_server: NatsServer, tmp_path: Path, setting: str | None, offered: bool
) -> None:
    """Per-message compression costs the gateway CPU on every frame to every socket, for deltas
    of a few hundred bytes: it is off unless ``TUTORPULSE_GATEWAY_COMPRESSION`` turns it on."""
    read_store(tmp_path).close()
    extra = {} if setting is None else {"TUTORPULSE_GATEWAY_COMPRESSION": setting}
    gateway = gateway_process(tmp_path, **nats_server.env_for("gateway"), **extra).start()
    try:
        await gateway.until_ready_is(200)
        # The client offers permessage-deflate, as browsers do.
        async with websockets.connect(
            f"ws://127.0.0.1:{gateway.port}/live",
            additional_headers={"Authorization": f"Bearer {mint(demo_actor())}"},
            ping_interval=None,
        ) as socket:
            assert socket.response is not None
            agreed = socket.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in agreed) is offered
            await socket.send('{"type":"ping"}')
            assert '"pong"' in await asyncio.wait_for(socket.recv(), 10)
    finally:
        gateway.stop()
