"""One command, all the way to a tutor's websocket, on PostgreSQL and a real nats-server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.live_demo import live_demo, mark_michael_absent, token, watching
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration


async def test_attendance_marked_over_http_reaches_the_tutors_websocket(
    pg: PostgresServer, nats_server: NatsServer
) -> None:
    async with live_demo(pg, nats_server) as demo:
        session = demo.session
        john = {"Authorization": f"Bearer {token('john')}"}
        async with watching(demo) as (socket, snapshot):
            response = await mark_michael_absent(demo)
            assert response.status_code == 200, response.text
            # This gateway re-reads its views every 60 s: within the wait, only the change
            # notice can deliver the delta.
            delta = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
            assert "ABSENT" in json.dumps(delta["patch"])

        # The same change is readable through the query API at the command's position.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{demo.cluster.query_port}"
        ) as query:
            view = await query.get(
                f"/api/v1/sessions/{session}/control-center",
                params={"position": response.json()["position"]},
                headers=john,
            )
        assert view.status_code == 200, view.text
        michael = next(s for s in view.json()["data"]["students"] if s["name"] == "Michael Lee")
        assert michael["attendance"] == "ABSENT"
