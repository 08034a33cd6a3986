"""The gateway's Litestar application: ``/live`` (websocket) plus the operations endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import structlog
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from nats.aio.client import Client

from services.live_gateway.hub import Connection, Hub, Settings
from services.projections.store import ReadStore
from shared.http.auth import ACTING_CENTRE_HEADER, actor_from
from shared.http.operations import operations_router, prometheus
from shared.http.problems import BASE_HANDLERS
from shared.tenancy import Actor, Forbidden
from shared.tenancy.tokens import InvalidToken, verify

SERVICE = "live_gateway"
UNAUTHORIZED, IDLE = 4401, 4408
log = structlog.get_logger(__name__)


def _authenticate(socket: WebSocket[Any, Any, Any]) -> Actor:
    token = socket.query_params.get("token")
    if token is None:
        return actor_from(socket)
    return verify(token).acting_in(socket.headers.get(ACTING_CENTRE_HEADER))


async def _send_forever(socket: WebSocket[Any, Any, Any], connection: Connection) -> None:
    while True:
        message = await connection.outbox.get()
        await socket.send_text(json.dumps(message, separators=(",", ":")))


async def _ping_forever(socket: WebSocket[Any, Any, Any], connection: Connection, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.ping_seconds)
        if time.monotonic() - connection.last_heard > 3 * settings.ping_seconds:
            log.info("gateway.idle_client_closed", user=str(connection.actor.user_id))
            await socket.close(code=IDLE, reason="no message from the client for too long")
            return
        connection.offer({"type": "ping"})


async def _handle(hub: Hub, connection: Connection, text: str) -> None:
    try:
        message = json.loads(text)
        kind = message["type"]
    except (ValueError, KeyError, TypeError):
        connection.offer({"type": "error", "status": 400, "detail": "send JSON objects with a 'type'"})
        return
    if kind == "ping":
        connection.offer({"type": "pong"})
    elif kind == "subscribe" and isinstance(message.get("topic"), str):
        last = message.get("lastVersion")
        await hub.subscribe(connection, message["topic"], last if isinstance(last, int) else None)
    elif kind == "unsubscribe" and isinstance(message.get("topic"), str):
        await hub.unsubscribe(connection, message["topic"])
        connection.offer({"type": "unsubscribed", "topic": message["topic"]})
    elif kind != "pong":
        connection.offer({"type": "error", "status": 400, "detail": f"unknown message type {kind!r}"})


def create_app(store: ReadStore, nc: Client, settings: Settings | None = None,
               own_resources: bool = False) -> Litestar:
    """``own_resources``: close the store and the NATS connection when the app stops."""
    hub = Hub(store, nc, settings)

    @websocket("/live")
    async def live(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            actor = _authenticate(socket)
        except (InvalidToken, Forbidden) as error:
            await socket.close(code=UNAUTHORIZED, reason=str(error)[:120])
            return
        connection = hub.open(actor)
        tasks = [asyncio.create_task(_send_forever(socket, connection)),
                 asyncio.create_task(_ping_forever(socket, connection, hub.settings))]
        try:
            while True:
                receive = asyncio.ensure_future(socket.receive_text())
                done, _ = await asyncio.wait([receive, *tasks], return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    break
                connection.last_heard = time.monotonic()
                await _handle(hub, connection, receive.result())
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Exception:
            log.exception("gateway.connection_failed", user=str(actor.user_id))
            raise
        finally:
            for task in tasks:
                task.cancel()
            await hub.close(connection)

    async def ready() -> None:
        if not nc.is_connected:
            raise ConnectionError("NATS is not connected")
        await anyio.to_thread.run_sync(store.watermark)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resync = asyncio.create_task(hub.resync_forever())
        try:
            yield
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync
            if own_resources:
                await nc.close()
                store.close()

    app = Litestar(route_handlers=[live, operations_router(SERVICE, ready)],
                   exception_handlers=BASE_HANDLERS, middleware=[prometheus(SERVICE).middleware],
                   lifespan=[lifespan], logging_config=None)
    app.state.hub = hub
    return app


async def app_from_environment() -> Litestar:
    from services.projections.store import open_read_store
    from shared.messaging import connect
    from shared.observability import configure_logging

    configure_logging(SERVICE)
    return create_app(open_read_store(), await connect(name="tutorpulse-gateway"), own_resources=True)
