"""The request id of every HTTP request and websocket, and one access log line per request.

:class:`RequestLog` wraps a Litestar application's whole ASGI handler (outside its exception
handling and routing, so a 404 or a problem+json answer passes through it too):

- it takes the caller's ``X-Request-Id`` when it is valid (``shared.observability.context``)
  or makes one, keeps a valid ``traceparent`` and ignores an invalid one;
- binds ``request_id`` (and ``trace_id``, with a traceparent) to every log line of the request
  (structlog context variables; ``shared.http.auth`` adds ``centre``, ``actor`` and ``role``
  once the token is verified), and makes the request's :class:`~.context.Trace` current, so
  the events a command stores carry it;
- answers ``X-Request-Id`` on every response (and on the websocket's handshake);
- logs one ``request`` line when the answer has gone (method, path template, status,
  ``duration_ms``); probes (``/health``, ``/ready``, ``/metrics``) at debug level;
- with tracing on (:mod:`.tracing`), makes the request a server span, child of the caller's
  ``traceparent``, whose own traceparent the stored events carry.

uvicorn's own access log is off (``access_log=False``) in every service.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import structlog

from shared.observability import context, tracing

if TYPE_CHECKING:
    from litestar import Litestar

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("tutorpulse.access")

PROBES = frozenset({"/health", "/ready", "/metrics"})
"""Paths logged at debug level: a probe every few seconds would otherwise bury the requests."""
_REQUEST_ID = b"x-request-id"
_TRACEPARENT = b"traceparent"
ACTOR_FIELDS = ("centre", "actor", "role")
"""The log fields ``shared.http.auth`` binds once a token is verified."""


class RequestLog:
    """See the module. ``service``: whose tracer (:mod:`.tracing`) makes a span of each
    request when tracing is on."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        traceparent: str | None = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                request_id = context.valid_request_id(value.decode("latin-1"))
            elif name == _TRACEPARENT:
                traceparent = context.valid_traceparent(value.decode("latin-1"))
        if request_id is None:
            request_id = context.new_request_id()
        header = (_REQUEST_ID, request_id.encode())
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            what = message["type"]
            if what == "http.response.start" or what == "websocket.accept":
                status = message.get("status", 101)
                message["headers"] = [*message.get("headers", ()), header]
            elif what == "websocket.close" and not status:
                status = 403  # closed before it was accepted: refused at the handshake
            await send(message)

        span = None
        tracer = tracing.tracer(self.service)
        if tracer is not None:
            method = scope.get("method", "WEBSOCKET")
            span = tracing.start_span(tracer, method, traceparent, "server")
            traceparent = tracing.traceparent_of(span)
        fields = {"request_id": request_id}
        trace_id = context.trace_id_of(traceparent)
        if trace_id is not None:
            fields["trace_id"] = trace_id
        bound = structlog.contextvars.bind_contextvars(**fields)
        current = context.CURRENT.set(context.trace(request_id, request_id, traceparent))
        started = time.perf_counter()
        try:
            await self.app(scope, receive, answer)
        except BaseException:
            status = status or 500
            raise
        finally:
            path = scope["path"]
            method = scope.get("method", "WEBSOCKET")
            template = scope.get("path_template") or path
            (log.debug if path in PROBES else log.info)(
                "request",
                method=method,
                path=template,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            if span is not None:
                span.update_name(f"{method} {template}")
                tracing.end(
                    span,
                    failed=status >= 500,
                    attributes={
                        "http.request.method": method,
                        "http.route": template,
                        "http.response.status_code": status,
                        "tutorpulse.request_id": request_id,
                    },
                )
            context.CURRENT.reset(current)
            structlog.contextvars.reset_contextvars(**bound)
            structlog.contextvars.unbind_contextvars(*ACTOR_FIELDS)


def with_request_log(app: Litestar, service: str) -> Litestar:
    """``app``, its whole ASGI handler wrapped in :class:`RequestLog` (as Litestar's own
    OpenTelemetry plugin wraps it); with tracing on, each request is a span of ``service``."""
    app.asgi_handler = RequestLog(app.asgi_handler, service)  # type: ignore[arg-type,assignment]
    return app
