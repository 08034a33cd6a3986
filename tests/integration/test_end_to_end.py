"""One command, all the way to a tutor's websocket, on PostgreSQL and a real nats-server."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from services.command.seed import seed
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.integration.cluster import running_cluster
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration
LIVE = "Intro to Programming - Live Q&A"


def token(handle: str) -> str:
    person = demo_person(handle)
    return mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))


async def test_attendance_marked_over_http_reaches_the_tutors_websocket(
    pg: PostgresServer, nats_server: NatsServer
) -> None:
    async with running_cluster(pg, nats_server) as cluster:
        sessions = seed(cluster.centres)
        while cluster.read.watermark() < cluster.centres.position:
            await asyncio.sleep(0.05)
        session = str(sessions[LIVE])
        john = {"Authorization": f"Bearer {token('john')}"}
        async with websockets.connect(
            f"ws://127.0.0.1:{cluster.gateway_port}/live?token={token('john')}", ping_interval=None
        ) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{session}"}))
            snapshot = json.loads(await socket.recv())
            assert snapshot["type"] == "snapshot"

            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{cluster.command_port}"
            ) as http:
                sent = time.perf_counter()
                response = await http.post(
                    "/api/academic/attendance/bulk",
                    headers=john,
                    json={
                        "sessionId": session,
                        "records": [
                            {"studentId": str(demo_person("michael").id), "status": "ABSENT"}
                        ],
                    },
                )
            assert response.status_code == 200, response.text
            delta = json.loads(await asyncio.wait_for(socket.recv(), 10))
            latency = time.perf_counter() - sent
            assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
            assert "ABSENT" in json.dumps(delta["patch"])
            assert latency < 2, "the change notice, not the periodic re-check, must deliver it"

        # The same change is readable through the query API at the command's position.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.query_port}") as query:
            view = await query.get(
                f"/api/v1/sessions/{session}/control-center",
                params={"position": response.json()["position"]},
                headers=john,
            )
        assert view.status_code == 200, view.text
        michael = next(s for s in view.json()["data"]["students"] if s["name"] == "Michael Lee")
        assert michael["attendance"] == "ABSENT"
