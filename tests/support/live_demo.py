"""The demo centre's day on a running cluster (``tests.integration.cluster``), followed live: a
websocket subscribed to its live session, and a tutor marking a student absent there over
HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from services.command.seed import seed
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.integration.cluster import Cluster, running_cluster
from tests.support.servers import NatsServer, PostgresServer

LIVE = "Intro to Programming - Live Q&A"
"""The demo session that is live."""


def token(handle: str) -> str:
    """A bearer token of the demo person ``handle`` (``john``: the tutor)."""
    person = demo_person(handle)
    return mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))


@dataclass(frozen=True)
class LiveDemo:
    cluster: Cluster
    session: str
    """The live session's id."""


@asynccontextmanager
async def live_demo(pg: PostgresServer, nats_server: NatsServer) -> AsyncIterator[LiveDemo]:
    """A cluster with the demo day seeded and every event of it projected."""
    async with running_cluster(pg, nats_server) as cluster:
        sessions = seed(cluster.centres)
        while cluster.read.watermark() < cluster.centres.position:
            await asyncio.sleep(0.05)
        yield LiveDemo(cluster, str(sessions[LIVE]))


@asynccontextmanager
async def watching(
    demo: LiveDemo, headers: dict[str, str] | None = None, handle: str = "john"
) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """``handle``'s websocket on the gateway (opened with ``headers``), subscribed to the live
    session, and the snapshot it was sent first."""
    async with websockets.connect(
        f"ws://127.0.0.1:{demo.cluster.gateway_port}/live",
        ping_interval=None,
        additional_headers={"Authorization": f"Bearer {token(handle)}", **(headers or {})},
    ) as socket:
        await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{demo.session}"}))
        snapshot = json.loads(await socket.recv())
        assert snapshot["type"] == "snapshot"
        yield socket, snapshot


async def mark_michael_absent(
    demo: LiveDemo, headers: dict[str, str] | None = None
) -> httpx.Response:
    """John's bulk attendance of the live session, Michael absent (``headers``: sent too)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.cluster.command_port}") as http:
        return await http.post(
            "/api/academic/attendance/bulk",
            headers={"Authorization": f"Bearer {token('john')}", **(headers or {})},
            json={
                "sessionId": demo.session,
                "records": [{"studentId": str(demo_person("michael").id), "status": "ABSENT"}],
            },
        )
