"""One click followed from HTTP to the websocket by its request id: the stored event, the
JetStream message, the projection's and the gateway's log lines (PostgreSQL, nats-server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
import websockets
from nats.aio.client import Client
from structlog.testing import capture_logs

from shared import events
from shared.events import STREAM_NAME, subject_for
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.support.live_demo import live_demo, mark_michael_absent, token, watching
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration
CLICK = "abc-click-0001"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def lines(logs: list[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == event]


async def test_one_click_is_followed_by_its_request_id_from_http_to_the_websocket(
    pg: PostgresServer, nats_server: NatsServer, nc: Client
) -> None:
    async with live_demo(pg, nats_server) as demo:
        cluster, session = demo.cluster, demo.session
        async with watching(demo, {"X-Request-Id": "socket-1"}) as (socket, _):
            assert socket.response is not None
            assert socket.response.headers["X-Request-Id"] == "socket-1"
            with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
                response = await mark_michael_absent(
                    demo, {"X-Request-Id": CLICK, "traceparent": TRACEPARENT}
                )
                assert response.status_code == 200, response.text
                assert response.headers["X-Request-Id"] == CLICK
                delta = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert delta["type"] == "delta"
                # The gateway logs the delta once it is handed to the connections.
                while not any(
                    CLICK in line["correlation_ids"] for line in lines(logs, "gateway.delta")
                ):
                    await asyncio.sleep(0.01)

        # A websocket's access line, when it closes, names its handshake's id and the reader.
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as socket_logs:
            async with websockets.connect(
                f"ws://127.0.0.1:{cluster.gateway_port}/live",
                ping_interval=None,
                additional_headers={
                    "X-Request-Id": "socket-2",
                    "Authorization": f"Bearer {token('john')}",
                },
            ) as second:
                await second.send(json.dumps({"type": "ping"}))
                assert json.loads(await second.recv())["type"] == "pong"
            while not [
                line
                for line in lines(socket_logs, "request")
                if line.get("request_id") == "socket-2"
            ]:
                await asyncio.sleep(0.01)
        [closed] = [
            line for line in lines(socket_logs, "request") if line.get("request_id") == "socket-2"
        ]
        assert (closed["method"], closed["path"], closed["status"]) == ("WEBSOCKET", "/live", 101)
        assert closed["centre"] == DEMO_CENTRE and closed["actor"] == str(demo_person("john").id)

        # The command's own lines: the access line names the click, the centre and John.
        [access] = [line for line in lines(logs, "request") if line.get("request_id") == CLICK]
        assert access["status"] == 200
        assert access["centre"] == DEMO_CENTRE
        assert access["actor"] == str(demo_person("john").id)
        assert access["trace_id"] == TRACEPARENT[3:35]

        # The stored events: each carries the click as correlation and causation.
        position = response.json()["position"]
        stored = [
            n
            for n in cluster.centres.recorder.select_notifications(1, position + 1)
            if events.decode_header(n.state).metadata is not None
        ]
        assert stored, "no stored event carries metadata"
        for notification in stored:
            metadata = events.decode_header(notification.state).metadata
            assert metadata is not None
            assert (metadata.correlation_id, metadata.causation_id) == (CLICK, CLICK)
            assert metadata.traceparent == TRACEPARENT

        # The JetStream message of each carries them as headers.
        js = nc.jetstream()
        for notification in stored:
            message = await js.get_last_msg(
                STREAM_NAME, subject_for(events.decode_header(notification.state))
            )
            headers = message.headers or {}
            assert headers["Tp-Notification-Id"] == str(notification.id)
            assert headers["Tp-Correlation-Id"] == CLICK
            assert headers["Tp-Causation-Id"] == CLICK
            assert headers["traceparent"] == TRACEPARENT

        # The projection's line for the batch that applied them, and the gateway's delta line.
        applied = lines(logs, "projections.applied")
        assert any(CLICK in line["correlation_ids"] for line in applied), applied
        [delta_line, *_] = [
            line for line in lines(logs, "gateway.delta") if CLICK in line["correlation_ids"]
        ]
        assert delta_line["topic"] == f"session:{session}"
        assert delta_line["centre"] == DEMO_CENTRE
        assert delta_line["version"] == delta["version"]
