"""A tutor moves a student to another lesson mid-session, then ends the session: both reach the
tutor's websocket as deltas, and the query API shows them (PostgreSQL, nats-server, every
service of the chain)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

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


async def next_delta(socket: ClientConnection, wanted: str) -> dict[str, Any]:
    """The next delta whose patch mentions ``wanted`` (others may come first)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] == "delta" and wanted in json.dumps(message["patch"]):
            return message


async def test_a_lesson_change_and_the_help_closed_at_the_end_reach_the_tutor_live(
    pg: PostgresServer, nats_server: NatsServer
) -> None:
    async with running_cluster(pg, nats_server) as cluster:
        session = str(seed(cluster.centres)[LIVE])
        while cluster.read.watermark() < cluster.centres.position:
            await asyncio.sleep(0.05)
        john = {"Authorization": f"Bearer {token('john')}"}
        jane = str(demo_person("jane").id)
        url = f"ws://127.0.0.1:{cluster.gateway_port}/live"
        async with (
            websockets.connect(url, additional_headers=john, ping_interval=None) as socket,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{cluster.command_port}", headers=john
            ) as command,
        ):
            await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{session}"}))
            snapshot = json.loads(await socket.recv())
            before = next(s for s in snapshot["data"]["students"] if s["studentId"] == jane)
            waiting = [
                s["openHelpRequest"]["helpRequestId"]
                for s in snapshot["data"]["students"]
                if s["openHelpRequest"]
            ]
            assert before["lessonId"] == "loops" and waiting  # the demo's live session

            moved = await command.post(
                f"/api/v1/sessions/{session}/enrolments/{jane}/lesson",
                json={"lessonId": "functions", "reason": "loops mastered"},
            )
            assert moved.status_code == 200, moved.text
            delta = await next_delta(socket, "functions")
            assert delta["version"] > snapshot["version"]

            ended = await command.post(f"/api/v1/sessions/{session}/end")
            assert ended.status_code == 200, ended.text
            assert sorted(ended.json()["helpRequestsClosed"]) == sorted(waiting)
            await next_delta(socket, "CLOSED")

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cluster.query_port}", headers=john
        ) as query:
            view = await query.get(
                f"/api/v1/sessions/{session}/control-center",
                params={"position": ended.json()["position"]},
            )
            assert view.status_code == 200, view.text
            students = view.json()["data"]["students"]
            assert next(s for s in students if s["studentId"] == jane)["lessonId"] == "functions"
            assert view.json()["data"]["openHelpRequests"] == 0
            closed = [h for s in students for h in s["helpRequests"] if h["status"] == "CLOSED"]
            assert sorted(h["helpRequestId"] for h in closed) == sorted(waiting)
            log = await query.get(f"/api/v1/sessions/{session}/log", params={"limit": 1000})
            types = [entry["type"] for entry in log.json()["entries"]]
            assert "StudentLessonChanged" in types and types.count("HelpRequestClosed") == len(
                waiting
            )
