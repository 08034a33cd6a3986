"""The gateway's Litestar application: ``/live`` (websocket) plus the operations endpoints.

Each connection runs three tasks until the first of them ends: a reader (client messages),
a writer (the connection's bounded outbox to the socket) and a watch (server pings, the idle
timeout, and the hub cutting it off when its person was erased). Under uvicorn, a round's
frames skip the outbox and go straight to the socket's transport whenever nothing waits
before them and the socket takes them at once (:func:`direct_writer`).

Personal texts are opened in the frames the gateway sends (:class:`~shared.privacy.Revealer`,
with the process's one :class:`~shared.privacy.KeyStore`, in the event store's database); the
token of a person who was erased is refused at the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
import msgspec
import structlog
from litestar import Litestar, WebSocket, websocket
from litestar.di import NamedDependency, Provide
from litestar.exceptions import WebSocketDisconnect
from nats.aio.client import Client
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from services.live_gateway import protocol
from services.live_gateway.asyncapi import asyncapi_json
from services.live_gateway.hub import (
    Connection,
    Frame,
    Hub,
    NatsClient,
    ResyncStale,
    Settings,
    sent_counter,
    text_frame,
)
from services.live_gateway.page import page_router
from services.live_gateway.protocol import BEARER_PROTOCOL, PROTOCOL
from services.live_gateway.settings import GatewaySettings
from shared.http.auth import ACTING_CENTRE_HEADER, ErasedPersonToken, bind_actor
from shared.http.operations import (
    NotReady,
    operations_router,
    prometheus,
    require_key_store,
)
from shared.http.problems import BASE_HANDLERS
from shared.messaging import NO_USER, NatsSettings, NoNatsUser, connect_or_stop
from shared.observability.access import ASGIApp, Receive, Scope, Send, with_request_log
from shared.privacy import KeyStore, Revealer, open_key_store
from shared.privacy.erasure import ErasureCheck, ErasureCheckUnavailable
from shared.readmodels.store import ReadStore
from shared.settings import load
from shared.tenancy import Actor, Forbidden
from shared.tenancy.tokens import InvalidToken, check_at_start, verify

SERVICE = "live_gateway"
UNAUTHORIZED, FORBIDDEN, IDLE, INTERNAL_ERROR, TRY_AGAIN_LATER = 4401, 4403, 4408, 1011, 1013
IDLE_PINGS = 3
"""Ping intervals without a word from the client before the gateway hangs up."""
CLOSE_TIMEOUT = 5.0
"""Seconds to wait for a close frame to go out to a client that stopped reading."""
CLOSE_REASON_BYTES = 123
"""The most a close frame can carry (RFC 6455)."""
NATS_PING_SECONDS = 0.5
"""How long /ready waits for NATS to answer a ping."""
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Closing:
    code: int
    reason: str


# --- one connection --------------------------------------------------------------------


def _subprotocol(socket: WebSocket[Any, Any, Any]) -> str | None:
    """The subprotocol to select on accepting: :data:`PROTOCOL` when the client offers it (a
    browser that offered subprotocols fails a handshake that selects none), never the token."""
    offered: list[str] = socket.scope.get("subprotocols") or []
    return PROTOCOL if PROTOCOL in offered else None


def _token(socket: WebSocket[Any, Any, Any], *, tokens_in_url: bool) -> str:
    """The one bearer token the client offered: in ``Authorization``, as the subprotocol
    ``tutorpulse.bearer.<token>`` beside ``tutorpulse.v1``, or, where ``tokens_in_url``, in the
    ``token`` query parameter. :class:`InvalidToken` for none, for different tokens, and for a
    token in the URL elsewhere."""
    offered: list[str] = socket.scope.get("subprotocols") or []
    in_protocol = {
        p.removeprefix(BEARER_PROTOCOL) for p in offered if p.startswith(BEARER_PROTOCOL)
    }
    in_url = set(socket.query_params.getall("token", []))
    if in_url and not tokens_in_url:
        raise InvalidToken(
            f"a token in the URL is refused: offer subprotocols {PROTOCOL} and "
            f"{BEARER_PROTOCOL}<token>, or send Authorization"
        )
    if in_protocol and PROTOCOL not in offered:
        raise InvalidToken(f"offer subprotocol {PROTOCOL} beside {BEARER_PROTOCOL}<token>")
    scheme, _, in_header = socket.headers.get("Authorization", "").partition(" ")
    in_header = in_header.strip() if scheme.lower() == "bearer" else ""
    tokens = in_protocol | in_url | ({in_header} if in_header else set())
    if len(tokens) > 1:
        raise InvalidToken("different tokens offered: offer one")
    if not tokens:
        raise InvalidToken(
            f"no token: offer subprotocols {PROTOCOL} and {BEARER_PROTOCOL}<token>, or send "
            "Authorization: Bearer <token>"
        )
    return tokens.pop()


def _authenticate(socket: WebSocket[Any, Any, Any], *, tokens_in_url: bool) -> tuple[Actor, Actor]:
    """The actor the client's bearer token names (:func:`_token`) as signed, and in the centre
    it acts in."""
    signed = verify(_token(socket, tokens_in_url=tokens_in_url))
    actor = signed.acting_in(socket.headers.get(ACTING_CENTRE_HEADER))
    bind_actor(actor)
    return signed, actor


async def handle_message(hub: Hub, connection: Connection, text: str) -> None:
    try:
        message = protocol.decode_client_message(text)
    except msgspec.DecodeError as error:
        connection.offer(protocol.Refused(status=400, detail=f"unreadable message: {error}"))
        return
    if isinstance(message, protocol.Subscribe):
        await hub.subscribe(connection, message.topic, message.last_version)
    elif isinstance(message, protocol.Unsubscribe):
        await hub.unsubscribe(connection, message.topic)
        connection.offer(protocol.Unsubscribed(topic=message.topic))
    elif isinstance(message, protocol.Ping):
        connection.offer(protocol.Pong())


async def _read(socket: WebSocket[Any, Any, Any], hub: Hub, connection: Connection) -> None:
    while True:
        text = await socket.receive_text()
        connection.last_heard = time.monotonic()
        await handle_message(hub, connection, text)


async def _write(socket: WebSocket[Any, Any, Any], hub: Hub, connection: Connection) -> None:
    while True:
        item = await connection.outbox.get()
        connection.writing = True  # frames offered meanwhile queue behind this one
        try:
            if isinstance(item, ResyncStale):  # the marker: messages were dropped
                await hub.resync_stale(connection)
                continue
            # Most items are frames made in a round, ready to go; a message is encoded here.
            frame = item if isinstance(item, Frame) else await hub.outgoing(connection, item)
            await socket.send_text(frame.text)
            sent_counter(frame.type).inc()
        finally:
            connection.writing = False


SERVER_SEND: Final = "tutorpulse.server_send"
"""Where :class:`KeepServerSend` leaves the ASGI server's own ``send`` in a websocket's scope."""


class KeepServerSend:
    """Wraps the application's ASGI handler: a websocket's scope keeps the server's ``send``,
    before any middleware wraps it, so that :func:`direct_writer` can find the socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


def direct_writer(socket: WebSocket[Any, Any, Any]) -> Callable[[Frame], bool] | None:
    """What writes a round's frame straight to an accepted socket's transport, as
    ``websockets.broadcast`` does: the same bytes uvicorn's websocket protocol would write for
    ``send_text`` (a frame serialised once, for every viewer it goes to), without an ASGI
    message, Litestar's and the request log's wrappers, or a task switch to the connection's
    writer. The writer answers False, and the frame is queued for the ordinary path, whenever
    that path would not write at once: the transport's buffer is full (uvicorn waits for it to
    drain), the socket is closing, or a close was sent. None when the server is not uvicorn's
    sans-I/O websockets protocol, or when the socket compresses its frames."""
    server_send = socket.scope.get(SERVER_SEND)
    protocol = getattr(server_send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or not protocol.handshake_complete:
        return None
    conn, transport, writable = protocol.conn, protocol.transport, protocol.writable
    if conn.extensions:  # permessage-deflate: each socket's compressor has its own state
        return None

    def write(frame: Frame) -> bool:
        if (
            not writable.is_set()
            or protocol.close_sent
            or protocol.disconnected
            or conn.state is not State.OPEN
            or conn.expect_continuation_frame
            or transport.is_closing()
        ):
            return False
        wire = frame.wire
        try:
            transport.write(text_frame(frame.text.encode()) if wire is None else wire)
        except (OSError, RuntimeError):  # the socket went away: the writer finds out and ends
            return False
        sent_counter(frame.type).inc()
        return True

    return write


async def _watch(connection: Connection, settings: Settings) -> Closing:
    """Ping every ``ping_seconds``; give up on a client silent for ``IDLE_PINGS`` intervals,
    or end when the hub cuts the connection off."""
    next_ping = time.monotonic() + settings.ping_seconds
    while True:
        now = time.monotonic()
        deadline = connection.last_heard + IDLE_PINGS * settings.ping_seconds
        if now >= deadline:
            return Closing(IDLE, "no message from the client for too long")
        if now >= next_ping:
            connection.offer(protocol.Ping())
            next_ping = now + settings.ping_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.cut_off.wait(), min(next_ping, deadline) - now)
        if connection.cut_off.is_set():
            return Closing(UNAUTHORIZED, connection.cut_off_reason)


async def _until_one_ends(*work: Awaitable[Closing | None]) -> Closing | None:
    """Run the connection's tasks until the first ends; how to close the socket, if at all."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = done.pop()
    error = first.exception()
    if error is None:
        return first.result()
    if isinstance(error, (WebSocketDisconnect, OSError)):  # the client went away
        return None
    log.error("gateway.connection_failed", exc_info=error)
    return Closing(INTERNAL_ERROR, "internal error")


async def _close(socket: WebSocket[Any, Any, Any], closing: Closing) -> None:
    reason = closing.reason.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
    # A client that stopped reading never takes the close frame: do not wait for it forever.
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError, TimeoutError):
        await asyncio.wait_for(socket.close(code=closing.code, reason=reason), CLOSE_TIMEOUT)


@websocket("/live")
async def live(
    socket: WebSocket[Any, Any, Any],
    hub: NamedDependency[Hub],
    tokens_in_url: NamedDependency[bool],
) -> None:
    # Accept first: a websocket refused during the handshake reaches a browser as a bare
    # failure (HTTP 403, close code 1006), while a close code after accepting is readable.
    await socket.accept(subprotocols=_subprotocol(socket))
    try:
        signed, actor = _authenticate(socket, tokens_in_url=tokens_in_url)
        if await hub.erased(signed):
            raise ErasedPersonToken("this person's data was erased: their tokens no longer work")
    except (InvalidToken, Forbidden, ErasureCheckUnavailable) as error:
        refused = Closing(
            UNAUTHORIZED
            if isinstance(error, InvalidToken)
            else FORBIDDEN
            if isinstance(error, Forbidden)
            else TRY_AGAIN_LATER,
            str(error),
        )
        log.info("gateway.refused", code=refused.code, reason=refused.reason)
        await _close(socket, refused)
        return
    if hub.nats is None:  # still connecting to NATS: /ready says so; come back shortly
        await _close(socket, Closing(TRY_AGAIN_LATER, "not connected to NATS yet; retry"))
        return
    connection = hub.open(actor)
    connection.direct = direct_writer(socket)
    log.info(
        "gateway.connected", user=str(actor.user_id), role=str(actor.role), centre=actor.centre_id
    )
    try:
        closing = await _until_one_ends(
            _read(socket, hub, connection),
            _write(socket, hub, connection),
            _watch(connection, hub.settings),
        )
    finally:
        await hub.close(connection)
    if closing is not None:
        log.info(
            "gateway.closing", user=str(actor.user_id), code=closing.code, reason=closing.reason
        )
        await _close(socket, closing)


# --- the application -------------------------------------------------------------------


@asynccontextmanager
async def _nats_client(
    nats: NatsClient | str | NatsSettings, hub: Hub, waiting: dict[str, str]
) -> AsyncIterator[None]:
    """Run ``hub`` while the app runs, with the client given, or with a connection to the
    server given (a URL, or the settings' URL and user), made in the background (the app
    serves ``/health`` and ``/ready`` meanwhile, and stops on SIGTERM however long NATS is
    away) and closed when the app stops. ``waiting["reason"]``: why the hub has no client
    yet."""
    if not isinstance(nats, str | NatsSettings):
        await hub.start(nats)
        try:
            yield
        finally:
            await hub.stop()
        return
    stopping = asyncio.Event()

    async def connect_then_start() -> Client | None:
        try:
            client = await connect_or_stop(stopping, nats, name="tutorpulse-gateway")
        except NoNatsUser:  # logged by connect; nothing will change until it is restarted
            waiting["reason"] = NO_USER
            return None
        if client is not None:
            await hub.start(client)
        return client

    connecting = asyncio.create_task(connect_then_start(), name="gateway-nats-connect")
    try:
        yield
    finally:
        stopping.set()
        client = await connecting
        await hub.stop()
        if client is not None:
            await client.close()


def create_app(
    store: ReadStore,
    nats: NatsClient | str | NatsSettings,
    settings: Settings | None = None,
    *,
    own_store: bool = False,
    gateway: GatewaySettings | None = None,
    keys: KeyStore | None = None,
    own_keys: bool = False,
) -> Litestar:
    """``nats``: a connected client, or a server to connect to (and disconnect from) with the
    app. ``settings``: the hub's (by default those of ``gateway``). ``own_store``: close the
    read-model store when the app stops. ``gateway``: the service's settings, by default read
    from the environment; refuses (:class:`TokenConfigurationError`) unsafe token settings.
    ``keys``: the key store that opens the sealed texts of every frame for its viewers' centre
    and tells who was erased (whose tokens are refused and sockets closed); without it frames
    go out as the read models hold them and every valid token works. ``own_keys``: close it
    when the app stops."""
    gateway = load(GatewaySettings) if gateway is None else gateway
    check_at_start(SERVICE, gateway.tokens)
    revealer = None if keys is None else Revealer(keys)
    erasures = None if keys is None else ErasureCheck.of(keys, gateway.privacy)
    hub = Hub(store, gateway.hub if settings is None else settings, revealer, erasures)

    waiting = {"reason": "waiting for NATS"}
    tokens_in_url = gateway.tokens.dev_mode

    async def ready() -> None:
        if hub.nats is None:
            raise NotReady(waiting["reason"])
        if not hub.ready:
            raise NotReady("NATS is not connected: change notices cannot reach this gateway")
        if not await hub.nats_answers(NATS_PING_SECONDS):
            raise NotReady(f"NATS does not answer a ping within {NATS_PING_SECONDS} s")
        await anyio.to_thread.run_sync(store.watermark)
        if keys is not None:
            await require_key_store(keys)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            async with _nats_client(nats, hub, waiting):
                yield
        finally:
            try:
                if own_store:
                    store.close()
            finally:
                if own_keys and keys is not None:
                    keys.close()

    app = Litestar(
        route_handlers=[
            live,
            asyncapi_json,
            *page_router(gateway.web, dev_mode=gateway.tokens.dev_mode),
            operations_router(SERVICE, ready, timeout=gateway.readiness.timeout_seconds),
        ],
        dependencies={
            "hub": Provide(lambda: hub, sync_to_thread=False, use_cache=True),
            # A token in a URL lands in access logs and browser history: development only.
            "tokens_in_url": Provide(lambda: tokens_in_url, sync_to_thread=False, use_cache=True),
        },
        exception_handlers=BASE_HANDLERS,
        middleware=[prometheus(SERVICE).middleware],
        lifespan=[lifespan],
        logging_config=None,
        debug=False,
    )
    app.state.hub = hub
    app = with_request_log(app, SERVICE)
    app.asgi_handler = KeepServerSend(app.asgi_handler)  # type: ignore[arg-type,assignment]
    return app


def app_from_environment() -> Litestar:
    """What uvicorn runs: the settings from the environment, once."""
    from services.settings import start
    from shared.readmodels.store import open_read_store

    settings = start(GatewaySettings, SERVICE)
    store = open_read_store(settings.read_store)
    try:
        keys = open_key_store(
            SERVICE, settings.event_store, settings.privacy, dev_mode=settings.tokens.dev_mode
        )
    except BaseException:
        store.close()
        raise
    return create_app(
        store, settings.nats, own_store=True, gateway=settings, keys=keys, own_keys=True
    )
