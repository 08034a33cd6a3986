"""``/health``, ``/ready`` and ``/metrics``: the same three endpoints on every service.

``/ready`` runs the service's readiness check with a time limit
(``TUTORPULSE_READY_TIMEOUT_SECONDS``, 0.8 s), so it answers within a second whatever the
check waits on: a check that has not answered by then is a 503 that says so. Only one check
runs at a time; a probe arriving meanwhile waits for the running one instead of starting
another (a check stuck on a dead database must not pile up threads). A check may return a dict
of details, which the body carries under ``details``, and may raise :class:`NotReady` to be
unready with details. Every verdict feeds the service's :class:`OutageLog`, so an outage is
logged once when it starts and once when it ends, and a failure seen by a request (the store
unreachable: ``shared.http.problems``) starts a watch that probes until the service is back
and logs the recovery even if nobody calls ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import structlog
import uvicorn
from litestar import Litestar, Request, Response, Router, get
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, Gauge

from shared.observability.metrics import exposition
from shared.observability.outage import OutageLog

log = structlog.get_logger(__name__)

Details = dict[str, Any]
ReadinessCheck = Callable[[], Awaitable[Details | None]]
"""Returns (optionally details) when the service can do its work; raises when it cannot."""

READY_HANDLER = "tutorpulse-ready"
"""The name of the ``/ready`` route, by which request handlers find the service's readiness."""
WATCH_SECONDS = 1.0
"""How often the service is probed while an outage seen by requests lasts."""

READY = Gauge(
    "tutorpulse_ready",
    "1 while the service's last readiness verdict was ready, 0 while not (changes() of it shows "
    "flapping)",
    ["service"],
    multiprocess_mode="livemostrecent",
)


class NotReady(Exception):
    """Raised by a readiness check: the service cannot do its work, for this reason."""

    def __init__(self, reason: str, details: Details | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str | None = None
    details: Details = field(default_factory=dict)


def describe(error: BaseException) -> str:
    """A short, single-line reason for logs and probe bodies."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


class Readiness:
    """A service's readiness check, run with a time limit and one at a time."""

    def __init__(self, service: str, check: ReadinessCheck, timeout: float) -> None:
        self.service = service
        self.timeout = timeout
        self.outages = OutageLog("service", service=service)
        self._check = check
        self._running: asyncio.Task[Details | None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._ready_gauge = READY.labels(service=service)

    def __deepcopy__(self, memo: dict[int, Any]) -> Readiness:
        # Litestar copies a route's ``opt`` when it registers the route; the copy must still be
        # this service's one readiness (its running check and its outage log).
        return self

    async def verdict(self) -> Verdict:
        verdict = await self._run_check()
        if verdict.ready:
            self.outages.succeeded()
        else:
            self.outages.failed(verdict.reason or "not ready")
        self._ready_gauge.set(1 if verdict.ready else 0)
        return verdict

    async def _run_check(self) -> Verdict:
        running = self._running
        loop = asyncio.get_running_loop()
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running = asyncio.ensure_future(self._check())
            running.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({running}, timeout=self.timeout)
        if not done:
            return Verdict(False, f"the readiness check did not answer within {self.timeout:g} s")
        if running.cancelled():
            return Verdict(False, "the readiness check was cancelled")
        error = running.exception()
        if error is None:
            return Verdict(True, details=dict(running.result() or {}))
        if isinstance(error, NotReady):
            return Verdict(False, error.reason, dict(error.details))
        return Verdict(False, describe(error))

    def request_failed(self, reason: str) -> None:
        """A request found a dependency unreachable: count it (logged once per outage) and
        probe until the service is ready again, so the recovery is logged too."""
        self.outages.failed(reason)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_until_ready(), name=f"{self.service}-outage-watch"
            )

    async def _watch_until_ready(self) -> None:
        while self.outages.current is not None:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.verdict()
            except Exception:  # the watch must outlive whatever a probe raises
                log.exception("ready.watch_failed", service=self.service)


class NatsConnection(Protocol):
    """The part of a nats-py client a ping needs."""

    @property
    def is_connected(self) -> bool: ...

    async def flush(self, timeout: int = ...) -> None: ...


class Probed(Protocol):
    """A store whose table ``probe`` reads (raising while it cannot): the key store."""

    def probe(self) -> None: ...


async def require_key_store(keys: Probed) -> None:
    """For ``/ready``: :class:`NotReady` unless the key store's table can be read now."""
    try:
        await anyio.to_thread.run_sync(keys.probe)
    except Exception as error:
        raise NotReady(
            f"the key store does not answer: sealed texts cannot be opened ({describe(error)})"
        ) from error


class NatsPing:
    """Whether a NATS server answers a connection's ping, for readiness checks: one ping at a
    time, and a ping is never given up on.

    nats-py 2.16 stops reading a connection for good when a PONG arrives for a ping whose wait
    was cancelled (``flush(timeout=…)`` timing out while the server is frozen raises
    InvalidStateError in its read loop): the client then looks connected and hears nothing, so
    a readiness probe must not ``flush`` with a timeout. Instead the ping waits as long as it
    takes, each check waits for it at most ``timeout``, and a new ping is sent only once the
    last one was answered (or the client reconnected, which forgets pending pings)."""

    PATIENCE = 24 * 3600
    """How long the ping itself waits for its PONG: for ever, in practice."""

    def __init__(self, nc: NatsConnection) -> None:
        self._nc = nc
        self._ping: asyncio.Task[None] | None = None
        self._reconnects = -1

    async def answers(self, timeout: float) -> bool:
        if not self._nc.is_connected or not _loops_running(self._nc):
            return False
        reconnects = int(getattr(self._nc, "stats", {}).get("reconnects", 0))
        ping = self._ping
        if ping is None or ping.done() or reconnects != self._reconnects:
            if ping is not None and not ping.done():
                ping.cancel()  # its PONG will never come: the reconnect forgot the ping
            ping = self._ping = asyncio.ensure_future(self._nc.flush(timeout=self.PATIENCE))
            ping.add_done_callback(_retrieve)
            self._reconnects = reconnects
        done, _ = await asyncio.wait({ping}, timeout=timeout)
        return bool(done) and not ping.cancelled() and ping.exception() is None


def _loops_running(nc: NatsConnection) -> bool:
    """Whether the client still reads and writes its connection. nats-py's ``flush`` returns at
    once, without a round trip, once its read loop or its flusher has ended (which it does for
    good on the failure above), so a ping would be "answered" by a client that hears nothing."""
    for name in ("_reading_task", "_flusher_task"):
        task = getattr(nc, name, None)
        if isinstance(task, asyncio.Future) and task.done():
            return False
    return True


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a finished check's exception as seen (a verdict may have stopped waiting for it)."""
    if not task.cancelled():
        task.exception()


def readiness_of(request: Request[Any, Any, Any]) -> Readiness | None:
    """The readiness of the service that received ``request`` (None outside tutorpulse apps)."""
    index = request.app.get_handler_index_by_name(READY_HANDLER)
    readiness = index["handler"].opt.get("readiness") if index else None
    return readiness if isinstance(readiness, Readiness) else None


def operations_router(
    service: str, readiness: ReadinessCheck, *, timeout: float, metrics_dir: Path | None = None
) -> Router:
    """``timeout``: the longest ``/ready`` waits for ``readiness``
    (:class:`shared.http.settings.ReadinessSettings`). ``metrics_dir``: where the workers of a
    service started with several keep their metrics (``shared.observability.metrics``);
    ``/metrics`` then answers their sum."""
    checked = Readiness(service, readiness, timeout)

    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @get("/ready", include_in_schema=False, name=READY_HANDLER, opt={"readiness": checked})
    async def ready() -> Response[dict[str, Any]]:
        verdict = await checked.verdict()
        body: dict[str, Any] = {
            "status": "ready" if verdict.ready else "unavailable",
            "service": service,
        }
        if verdict.reason is not None:
            body["reason"] = verdict.reason
        if verdict.details:
            body["details"] = verdict.details
        return Response(body, status_code=200 if verdict.ready else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(exposition(metrics_dir), media_type=CONTENT_TYPE_LATEST)

    return Router(path="/", route_handlers=[health, ready, metrics])


def prometheus(service: str) -> PrometheusConfig:
    return PrometheusConfig(
        app_name=service,
        prefix="tutorpulse",
        group_path=True,
        exclude=["^/metrics", "^/health", "^/ready"],
        labels={"service": service},
        scopes={ScopeType.HTTP},
    )


def operations_server(
    service: str, readiness: ReadinessCheck, *, host: str, port: int, timeout: float
) -> uvicorn.Server:
    """A small HTTP server with only the operations endpoints, for services whose work is not
    HTTP (relay, projections). Signals are left to the caller's event loop."""
    from shared.http.problems import BASE_HANDLERS

    app = Litestar(
        route_handlers=[operations_router(service, readiness, timeout=timeout)],
        middleware=[prometheus(service).middleware],
        exception_handlers=BASE_HANDLERS,
        logging_config=None,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    # The caller's event loop owns SIGINT/SIGTERM (it stops the service's work, then this server).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server
