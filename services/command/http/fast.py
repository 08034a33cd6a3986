"""Commands answered from the socket, without Litestar's request pipeline, when nothing about
the request is out of the ordinary.

Litestar handles a command request in a dozen layers (its exception middleware twice, routing,
Prometheus, each rate limit, the guard, the signature model converting the parsed body, the
response object and the send wrappers of each layer): in a profile of the command service under
load they were about two thirds of its CPU, the command itself a quarter. :class:`FastCommands`
sits where Litestar's router would be called (inside the request log, which gives every request
its id and access log line, and inside Litestar's own ``before_send`` hooks, which count the
commands by centre) and does the same work once:

- the route and its path parameters, from Litestar's own router;
- the caller, from the bearer token (verified once, as the guard does), and the route's guards;
- the body, decoded straight into the route's body struct by a ``msgspec`` decoder made once
  per route (lax, as Litestar converts a parsed body), and the path ids into theirs;
- the per-caller rate limits (the same windows, keys and ``RateLimit-*`` headers as the
  limits' middleware, :func:`shared.http.ratelimit.count_ahead`);
- the command, in a command thread; its answer, encoded as Litestar encodes it, with the same
  headers; the same Prometheus series as Litestar's middleware.

Anything else goes to the application unchanged (its body handed on as it came): a query
string, another content type, a browser's request to an application that answers CORS, a
missing or invalid token, a refused permission, a body that does not decode, a full rate-limit
window. So every 4xx answer, problem+json, is still the application's own. A command that
raises is handed on too, with its exception, which the route's handler raises instead of running
the command again (:data:`RAISED`), so the application's exception handlers answer it; the rate
limits it was counted in are not counted again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar._asgi.utils import is_valid_host
from litestar.handlers import HTTPRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.serialization import encode_json, get_serializer
from litestar.utils.path import normalize_path

from services.command.application import TutoringCentres
from services.command.bus import Verb
from services.command.commands.base import Command
from services.command.http.routes import Route
from services.command.idempotency import MAX_KEY_LENGTH, IdempotencyKey
from services.command.metrics import COMMANDS
from shared.http.api import MAX_BODY_BYTES
from shared.http.auth import actor_from
from shared.http.ratelimit import RateLimit, count_ahead

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAST = "tutorpulse.fast_command"
"""The ``opt`` key under which a command route's handler keeps its :class:`FastRoute`."""
RAISED = "tutorpulse.command_raised"
"""The scope key of the exception a command raised on the fast path: the route's handler
raises it for the application to answer."""

_JSON = b"application/json"


@dataclass(frozen=True)
class FastRoute:
    """What the fast path needs of one command route, made once."""

    spec: Route
    verb: Verb[Any]
    body: msgspec.json.Decoder[Any] | None
    """The body's decoder (``None``: the route takes no body)."""
    path: type[msgspec.Struct] | None
    """The path parameters' struct (``None``: there are none)."""

    @staticmethod
    def of(
        spec: Route, verb: Verb[Any], body: type[msgspec.Struct] | None, path: list[tuple[str, Any]]
    ) -> FastRoute | None:
        """``None`` for a route the fast path leaves to the application (query parameters)."""
        if spec.query:
            return None
        return FastRoute(
            spec,
            verb,
            None if body is None else msgspec.json.Decoder(body, strict=False),
            None
            if not path
            else msgspec.defstruct(f"{spec.command.__name__}Path", path, kw_only=True),
        )

    def command(self, path_params: dict[str, Any], body: bytes) -> Command | None:
        """The command, or ``None`` when the body or the path does not make one (the
        application then says why)."""
        try:
            fields: dict[str, Any] = {}
            if self.path is not None:
                fields = msgspec.structs.asdict(
                    msgspec.convert(path_params, self.path, strict=False)
                )
            if self.body is not None:
                if not body:
                    return None
                fields |= msgspec.structs.asdict(self.body.decode(body))
            return self.spec.command(**fields)
        except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError):
            return None


def idempotency_of(
    request: Request[Any, Any, Any], key: str, sent: Iterable[bytes]
) -> IdempotencyKey:
    """The key, with a digest of the request (its method, path and what was ``sent``), so that
    the key reused for another request is refused. (Its length, 1 to ``MAX_KEY_LENGTH``, is
    checked with the header: a 422 naming it.)"""
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    for part in sent:
        digest.update(part)
    return IdempotencyKey(key, digest.hexdigest())


class _Labels:
    """The series of Litestar's Prometheus middleware (``group_path``: by path template), its
    children kept per label values."""

    def __init__(self, config: PrometheusConfig) -> None:
        self._config = config
        self._metrics = PrometheusMiddleware(app=_never, config=config)  # type: ignore[arg-type]
        self._children: dict[tuple[Any, ...], Any] = {}

    def labels(self, method: str, template: str, status: int) -> dict[str, Any]:
        return {
            "method": method,
            "path": template,
            "status_code": status,
            "app_name": self._config.app_name,
            **{name: str(value) for name, value in (self._config.labels or {}).items()},
        }

    def child(self, kind: str, method: str, template: str, status: int) -> Any:
        key = (kind, method, template, status)
        child = self._children.get(key)
        if child is None:
            labels = self.labels(method, template, status)
            metric = getattr(self._metrics, kind)(labels)
            child = self._children[key] = metric.labels(*labels.values())
        return child


async def _never(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the fast path keeps Prometheus's series only")


class FastCommands:
    """See the module. ``app``: Litestar's ASGI handler (exception handling and routing), which
    answers whatever this does not. ``run``: how a command is run off the event loop."""

    def __init__(
        self,
        app: ASGIApp,
        centres: TutoringCentres,
        *,
        limits: tuple[RateLimit, ...],
        prometheus: PrometheusConfig,
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
    ) -> None:
        self.app = app
        self.centres = centres
        self.limits = limits
        self.metrics = _Labels(prometheus)
        self.run = run
        self._serializers: dict[HTTPRouteHandler, Callable[[Any], Any] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("query_string")
            or scope.get("root_path")
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
        ):
            await self.app(scope, receive, send)
            return
        try:
            _, handler, path, path_params, template = scope[
                "litestar_app"
            ].asgi_router.handle_routing(path=normalize_path(scope["path"]), method=scope["method"])
        except Exception:  # not found, method not allowed: the application answers
            await self.app(scope, receive, send)
            return
        fast: FastRoute | None = handler.opt.get(FAST)
        if fast is None or self._serializer(handler) is None or not self._plain(scope, fast):
            await self.app(scope, receive, send)
            return
        scope["path"] = path  # normalised, as the router leaves it (the Idempotency-Key's digest)
        await self._command(scope, receive, send, fast, handler, path_params, template)

    def _serializer(self, handler: HTTPRouteHandler) -> Callable[[Any], Any] | None:
        """How the handler's answers are encoded, or ``None`` if the handler's layers add what
        the fast path does not do (other middleware, request hooks, response headers or
        cookies, background tasks): then the application answers every request of it."""
        if handler in self._serializers:
            return self._serializers[handler]
        plain = (
            len(handler.resolve_middleware()) == 1 + len(self.limits)  # Prometheus, the limits
            and not handler.resolve_response_headers()
            and not handler.resolve_response_cookies()
            and handler.resolve_before_request() is None
            and handler.resolve_after_response() is None
            and not any(layer.after_request for layer in handler.ownership_layers)
            and handler.background is None
        )
        serializer = get_serializer(handler.resolve_type_encoders()) if plain else None
        self._serializers[handler] = serializer
        return serializer

    @staticmethod
    def _plain(scope: Scope, fast: FastRoute) -> bool:
        """Headers the fast path can take as they are: a valid host, a JSON body (if any) of
        at most ``MAX_BODY_BYTES``, no ``Origin`` when the application answers CORS."""
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"origin" and scope["litestar_app"].cors_config is not None:
                return False  # a browser's request: Litestar's CORS middleware answers it
            elif (name == b"host" and not is_valid_host(value)) or (
                name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY_BYTES)
            ):
                return False
        if fast.body is None:
            return True
        return content_type is not None and (
            content_type == _JSON or content_type.split(b";", 1)[0].strip().lower() == _JSON
        )

    async def _command(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        fast: FastRoute,
        handler: HTTPRouteHandler,
        path_params: dict[str, Any],
        template: str,
    ) -> None:
        started = time.perf_counter()
        scope["path_params"] = path_params
        scope["route_handler"] = handler
        scope["path_template"] = template
        received: list[Message] = []

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        async def hand_on() -> None:
            await self.app(scope, replay, send)

        request: Request[Any, Any, Any] = Request(scope)  # type: ignore[arg-type]
        try:
            actor = actor_from(request)
            for guard in handler.resolve_guards():
                checked = guard(request, handler)
                if checked is not None:
                    await checked
        except Exception:  # no token, a bad one, a refused permission: the application says
            await hand_on()
            return
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
            await hand_on()
            return
        body = bytearray()
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                await hand_on()
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await hand_on()
                return
            if not message.get("more_body", False):
                break
        sent = bytes(body)
        command = fast.command(path_params, sent)
        if command is None:
            await hand_on()
            return
        limit_headers = count_ahead(self.limits, request)
        if limit_headers is None:  # a full window: the limits' middleware answers 429
            await hand_on()
            return
        idempotency = None
        if key is not None:
            idempotency = idempotency_of(request, key, [sent])
        metrics = self.metrics
        method = scope["method"]
        progress = metrics.child("requests_in_progress", method, template, 200)
        progress.inc()
        try:
            try:
                result = await self.run(
                    lambda: self.centres.handle(actor, command, idempotency=idempotency)
                )
            except Exception as error:
                # The application's exception handlers answer it (and its middleware counts it).
                received[:] = [{"type": "http.request", "body": sent, "more_body": False}]
                scope[RAISED] = error
                await self.app(scope, replay, send)
                return
            verb = fast.verb
            COMMANDS.labels(
                command=verb.name, outcome="replayed" if result.replayed else "ok"
            ).inc()
            answer = encode_json(
                {**result.body, "position": result.position}, self._serializers[handler]
            )
            headers = [
                (b"content-type", _JSON),
                (b"content-length", str(len(answer)).encode()),
                (b"x-tutorpulse-position", str(result.position).encode()),
            ]
            if result.replayed:
                headers.append((b"idempotent-replayed", b"true"))
            headers += [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()]
            status = result.status_code
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer, "more_body": False})
            self._count(method, template, status, started)
        finally:
            progress.dec()

    def _count(self, method: str, template: str, status: int, started: float) -> None:
        metrics = self.metrics
        if status >= 500:
            metrics.child("requests_error_count", method, template, status).inc()
        metrics.child("request_count", method, template, status).inc()
        metrics.child("request_time", method, template, status).observe(
            time.perf_counter() - started
        )
