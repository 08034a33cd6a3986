"""Connections, their topics, and the NATS change notices that wake them.

A topic is what a client follows: ``session:<id>`` (a Control Center) or ``my-day``. On every
change notice for a topic's document, the hub reads the viewer's own view through
``services.projections.access`` (so the gateway shows exactly what the query API shows) and
sends the difference from the last view it sent that viewer as a JSON merge patch.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio.to_thread
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import Counter, Gauge

from services.projections import access
from services.projections.deltas import delta_subject
from services.projections.models.documents import SESSION, TUTOR
from services.projections.store import ReadStore
from services.projections.views import merge_patch, utcnow
from shared.tenancy import Actor, Forbidden

log = structlog.get_logger(__name__)

CONNECTIONS = Gauge("tutorpulse_gateway_connections", "Open websocket connections")
SUBSCRIPTIONS = Gauge("tutorpulse_gateway_subscriptions", "Topics followed across connections")
SENT = Counter("tutorpulse_gateway_messages_total", "Messages queued for clients", ["type"])
RESYNCS = Counter("tutorpulse_gateway_resyncs_total", "Fresh snapshots sent instead of deltas")
DROPPED = Counter("tutorpulse_gateway_dropped_total", "Messages dropped for a client too slow to read")


@dataclass(frozen=True)
class Settings:
    queue: int = int(os.environ.get("TUTORPULSE_GATEWAY_QUEUE", "64"))
    ping_seconds: float = float(os.environ.get("TUTORPULSE_GATEWAY_PING_SECONDS", "15"))
    resync_seconds: float = float(os.environ.get("TUTORPULSE_GATEWAY_RESYNC_SECONDS", "5"))


class BadTopic(ValueError):
    pass


@dataclass(frozen=True)
class Topic:
    name: str
    kind: str
    key: str

    @classmethod
    def parse(cls, name: str, actor: Actor) -> Topic:
        if name == "my-day":
            return cls(name, TUTOR, str(actor.user_id))
        prefix, _, value = name.partition(":")
        if prefix == "session":
            try:
                return cls(name, SESSION, str(UUID(value)))
            except ValueError:
                pass
        raise BadTopic(f"unknown topic {name!r}: use 'session:<id>' or 'my-day'")

    def subject(self, centre_id: str) -> str:
        return delta_subject(centre_id, self.kind, self.key)


@dataclass(eq=False)
class Connection:
    actor: Actor
    queue_size: int
    outbox: asyncio.Queue[dict[str, Any]] = field(init=False)
    sent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """Per topic: the version and view last queued for this client."""
    stale: set[str] = field(default_factory=set)
    """Topics whose next message must be a snapshot (after messages were dropped)."""
    topics: dict[str, Topic] = field(default_factory=dict)
    last_heard: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(maxsize=self.queue_size)

    def offer(self, message: dict[str, Any]) -> None:
        """Queue a message; a client that fell a whole queue behind gets snapshots instead."""
        try:
            self.outbox.put_nowait(message)
            SENT.labels(message["type"]).inc()
        except asyncio.QueueFull:
            dropped = self.outbox.qsize()
            while not self.outbox.empty():
                self.outbox.get_nowait()
            DROPPED.inc(dropped + 1)
            self.stale |= set(self.topics)
            log.warning("gateway.client_too_slow", dropped=dropped + 1, user=str(self.actor.user_id))


class Hub:
    def __init__(self, store: ReadStore, nc: Client, settings: Settings | None = None) -> None:
        self.store = store
        self.nc = nc
        self.settings = settings or Settings()
        self._followers: dict[str, set[tuple[Connection, str]]] = {}
        self._nats: dict[str, Any] = {}
        self.connections: set[Connection] = set()

    # --- connections -------------------------------------------------------------------

    def open(self, actor: Actor) -> Connection:
        connection = Connection(actor, self.settings.queue)
        self.connections.add(connection)
        CONNECTIONS.set(len(self.connections))
        return connection

    async def close(self, connection: Connection) -> None:
        for name in list(connection.topics):
            await self.unsubscribe(connection, name)
        self.connections.discard(connection)
        CONNECTIONS.set(len(self.connections))

    # --- topics ------------------------------------------------------------------------

    async def subscribe(self, connection: Connection, name: str, last_version: int | None = None) -> None:
        try:
            topic = Topic.parse(name, connection.actor)
            version, view = await self._view(connection.actor, topic)
        except BadTopic as error:
            connection.offer({"type": "error", "topic": name, "status": 400, "detail": str(error)})
            return
        except Forbidden as error:
            connection.offer({"type": "error", "topic": name, "status": 403, "detail": str(error)})
            return
        except access.NotVisible as error:
            connection.offer({"type": "error", "topic": name, "status": 404, "detail": str(error)})
            return
        subject = topic.subject(connection.actor.centre_id)
        if name not in connection.topics:
            connection.topics[name] = topic
            self._followers.setdefault(subject, set()).add((connection, name))
            if subject not in self._nats:
                self._nats[subject] = await self.nc.subscribe(subject, cb=self._on_notice)
            SUBSCRIPTIONS.inc()
        connection.sent[name] = (version, view)
        if last_version is not None and last_version == version:
            connection.offer({"type": "subscribed", "topic": name, "version": version})
        else:
            connection.offer({"type": "snapshot", "topic": name, "version": version, "data": view})

    async def unsubscribe(self, connection: Connection, name: str) -> None:
        topic = connection.topics.pop(name, None)
        connection.sent.pop(name, None)
        connection.stale.discard(name)
        if topic is None:
            return
        SUBSCRIPTIONS.dec()
        subject = topic.subject(connection.actor.centre_id)
        followers = self._followers.get(subject, set())
        followers.discard((connection, name))
        if not followers:
            self._followers.pop(subject, None)
            subscription = self._nats.pop(subject, None)
            if subscription is not None:
                await subscription.unsubscribe()

    @property
    def nats_subjects(self) -> set[str]:
        return set(self._nats)

    # --- changes -----------------------------------------------------------------------

    async def _on_notice(self, message: Msg) -> None:
        for connection, name in list(self._followers.get(message.subject, ())):
            await self.refresh(connection, name)

    async def refresh(self, connection: Connection, name: str) -> None:
        """Send this viewer what changed in their view of ``name`` (a snapshot if stale)."""
        topic = connection.topics.get(name)
        if topic is None:
            return
        try:
            version, view = await self._view(connection.actor, topic)
        except (Forbidden, access.NotVisible) as error:
            connection.offer({"type": "error", "topic": name, "status": 404, "detail": str(error)})
            await self.unsubscribe(connection, name)
            return
        if name in connection.stale:
            connection.stale.discard(name)
            connection.sent[name] = (version, view)
            RESYNCS.inc()
            connection.offer({"type": "snapshot", "topic": name, "version": version, "data": view})
            return
        last_version, last_view = connection.sent.get(name, (0, {}))
        if version < last_version:
            return
        patch = merge_patch(last_view, view)
        if not patch and version == last_version:
            return
        connection.sent[name] = (version, view)
        connection.offer({"type": "delta", "topic": name, "version": version, "patch": patch})

    async def resync_forever(self) -> None:
        """Re-read every followed view now and then: a lost notice delays a change, never loses it."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for connection in list(self.connections):
                for name in list(connection.topics):
                    await self.refresh(connection, name)

    async def _view(self, actor: Actor, topic: Topic) -> tuple[int, dict[str, Any]]:
        read: Callable[[], access.View]
        if topic.kind == SESSION:
            read = lambda: access.control_center(self.store, actor, UUID(topic.key), utcnow())  # noqa: E731
        else:
            read = lambda: access.my_day(self.store, actor, None, utcnow())  # noqa: E731
        view = await anyio.to_thread.run_sync(read)
        return view.version, view.data


Sender = Callable[[dict[str, Any]], Awaitable[None]]
