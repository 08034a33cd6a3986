"""One command, all the way to a tutor's websocket, on PostgreSQL and a real nats-server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import nats
import pytest
import uvicorn
import websockets
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.command.seed import seed
from services.live_gateway.app import create_app as gateway_app
from services.live_gateway.hub import Settings
from services.projections.service import ProjectionService
from services.projections.store import open_read_store
from services.query.app import create_app as query_app
from services.relay.lease import PostgresLease
from services.relay.relay import Relay
from shared.eventstore.store import postgres_conninfo, store_env
from shared.messaging import ensure_streams
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.support.servers import NatsServer, PostgresServer, free_port

pytestmark = pytest.mark.integration
LIVE = "Intro to Programming - Live Q&A"


def token(handle: str) -> str:
    person = demo_person(handle)
    return mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))


async def serve(app: object) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,  # type: ignore[arg-type]
                                           ws_ping_interval=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port


async def test_attendance_marked_over_http_reaches_the_tutors_websocket(
    pg: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    centres = TutoringCentres(pg.env())
    sessions = seed(centres)
    read = open_read_store({"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    relay = Relay(centres, centres.tracking(), js,
                  PostgresLease(postgres_conninfo(store_env(pg.env())), "e2e"))
    projections = ProjectionService(read, nc)
    workers = [asyncio.create_task(relay.run()), asyncio.create_task(projections.run())]
    servers = [await serve(command_app(centres, own_resources=False)),
               await serve(gateway_app(read, nc, Settings(resync_seconds=60)))]
    command_port, gateway_port = servers[0][2], servers[1][2]
    try:
        while read.watermark() < centres.position:
            await asyncio.sleep(0.05)
        session = str(sessions[LIVE])
        async with websockets.connect(f"ws://127.0.0.1:{gateway_port}/live?token={token('john')}",
                                      ping_interval=None) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{session}"}))
            snapshot = json.loads(await socket.recv())
            assert snapshot["type"] == "snapshot"

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{command_port}") as http:
                sent = time.perf_counter()
                response = await http.post("/api/academic/attendance/bulk", headers={
                    "Authorization": f"Bearer {token('john')}"}, json={
                    "sessionId": session,
                    "records": [{"studentId": str(demo_person("michael").id), "status": "ABSENT"}]})
            assert response.status_code == 200, response.text
            delta = json.loads(await asyncio.wait_for(socket.recv(), 10))
            latency = time.perf_counter() - sent
            assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
            assert "ABSENT" in json.dumps(delta["patch"])
            assert latency < 2, "the change notice, not the periodic re-check, must deliver it"

        # The same change is readable through the query API at the command's position.
        with TestClient(query_app(read, own_resources=False)) as query:
            view = query.get(f"/api/v1/sessions/{session}/control-center",
                             params={"position": response.json()["position"]},
                             headers={"Authorization": f"Bearer {token('john')}"})
        assert view.status_code == 200, view.text
        michael = next(s for s in view.json()["data"]["students"] if s["name"] == "Michael Lee")
        assert michael["attendance"] == "ABSENT"
    finally:
        for server, task, _ in servers:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        relay.stop()
        projections.stop()
        await asyncio.wait_for(asyncio.gather(*workers), 10)
        await nc.close()
        read.close()
        centres.close()
