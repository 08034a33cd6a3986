"""The live gateway's /ready follows NATS: 503 while it is killed or frozen (a frozen server
keeps the connection open), 200 again by itself once it answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from services.live_gateway.app import create_app
from services.live_gateway.hub import Settings
from tests.integration.cluster import serve
from tests.integration.restarts import frozen, restart_nats
from tests.readside import read_store
from tests.support.servers import NatsServer

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
                assert "does not answer" in response.json()["reason"]
                assert took < 1.2, f"/ready took {took:.2f} s"
            await until(await status_is(200), "ready again after the freeze")
            # A fresh ping is answered too: the client still reads its connection (nats-py
            # stops reading for good if a ping's wait is cancelled and its PONG comes later).
            for _ in range(3):
                assert (await http.get("/ready")).status_code == 200
        print(f"\ngateway ready again {back:.2f} s after NATS restarted; /ready answered "
              f"{took:.2f} s into a freeze")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
