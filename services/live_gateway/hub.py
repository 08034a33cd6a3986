"""Connections, their topics, and the NATS change notices that wake them.

A topic is what a client follows: ``session:<id>`` (a Control Center), ``my-day``,
``student:<id>`` (a student overview), ``class:<id>`` (a class roster), ``catch-ups`` or
``notifications`` (the follower's own inbox: a topic names no person, so nobody can follow
another's). On every
change notice for a topic's document, the hub reads the viewer's own view through
``shared.readmodels.access`` (so the gateway shows exactly what the query API shows) and
sends the difference from the last view it sent that viewer as a JSON merge patch. Notices
are only doorbells: every followed view is also re-read every ``resync_seconds``, so a lost
notice delays a change but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from uuid import UUID

import anyio.to_thread
import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from prometheus_client import Counter, Gauge

from services.live_gateway import protocol
from services.live_gateway.settings import HubSettings
from shared.http.operations import NatsPing
from shared.readmodels import access
from shared.readmodels.deltas import decode_notice, delta_subject
from shared.readmodels.documents import CATCH_UP, CLASS, INBOX, SESSION, STUDENT, TUTOR
from shared.readmodels.store import ReadStore
from shared.readmodels.views import merge_patch, utcnow
from shared.readmodels.views import notifications as notification_views
from shared.tenancy import Actor, Forbidden, Permission, require

log = structlog.get_logger(__name__)

CONNECTIONS = Gauge("tutorpulse_gateway_connections", "Open websocket connections")
SUBSCRIPTIONS = Gauge("tutorpulse_gateway_subscriptions", "Topics followed, over all connections")
NATS_SUBJECTS = Gauge("tutorpulse_gateway_nats_subscriptions", "Notice subjects subscribed on NATS")
SENT = Counter("tutorpulse_gateway_messages_sent_total", "Messages written to clients", ["type"])
RESYNCS = Counter(
    "tutorpulse_gateway_resyncs_total",
    "Fresh snapshots sent in place of messages dropped for a slow client",
)
DROPPED = Counter(
    "tutorpulse_gateway_dropped_total", "Messages dropped because a client read too slowly"
)

NOTICES_PENDING_PER_SUBJECT = 256
"""Notices waiting to be handled per subject; beyond it NATS drops them (the periodic check
still delivers the change), so a slow gateway cannot pile up memory."""
RESYNC_CONCURRENCY = 4
"""Views the periodic check re-reads at once: it must not starve reads woken by notices."""

Message = protocol.ServerMessage


Settings = HubSettings
"""What the hub keeps per connection and how often it re-reads
(``services.live_gateway.settings``)."""


class BadTopic(ValueError):
    """Not a topic the gateway knows (400)."""


class TooManyTopics(Exception):
    """The connection already follows ``max_topics`` topics (429)."""


REFUSALS: Final[dict[type[Exception], int]] = {
    BadTopic: 400,
    Forbidden: 403,
    access.NotVisible: 404,
    TooManyTopics: 429,
}


def refusal(topic: str, error: Exception) -> Message:
    status = next(code for kind, code in REFUSALS.items() if isinstance(error, kind))
    return protocol.Refused(topic=topic, status=status, detail=str(error))


EVERY_DOCUMENT: Final = "*"
"""The key of a topic that lists every document of its kind in the centre (a NATS wildcard)."""
_KINDS_BY_PREFIX: Final = {"session": SESSION.name, "student": STUDENT.name, "class": CLASS.name}
"""Topics about one document, ``<prefix>:<id>``, and the kind of document each follows."""


@dataclass(frozen=True)
class Topic:
    name: str
    kind: str
    key: str

    @classmethod
    def parse(cls, name: str, actor: Actor) -> Topic:
        if name == "my-day":
            return cls(name, TUTOR.name, str(actor.user_id))
        if name == "catch-ups":
            return cls(name, CATCH_UP.name, EVERY_DOCUMENT)
        if name == "notifications":
            return cls(name, INBOX.name, str(actor.user_id))
        prefix, _, value = name.partition(":")
        kind = _KINDS_BY_PREFIX.get(prefix)
        if kind is not None:
            try:
                return cls(name, kind, str(UUID(value)))
            except ValueError:
                pass
        raise BadTopic(
            f"unknown topic {name!r}: use 'session:<id>', 'student:<id>', 'class:<id>', "
            "'my-day', 'catch-ups' or 'notifications'"
        )

    def subject(self, centre_id: str) -> str:
        return delta_subject(centre_id, self.kind, self.key)


class _ResyncStale:
    """Queued after messages were dropped: the writer asks for fresh snapshots on reaching it."""


RESYNC_STALE: Final = _ResyncStale()
Outgoing = Message | _ResyncStale


@dataclass(frozen=True)
class Sent:
    version: int
    view: dict[str, Any]


def snapshot(topic: str, current: Sent) -> Message:
    return protocol.Snapshot(topic=topic, version=current.version, data=current.view)


@dataclass(eq=False)
class Connection:
    actor: Actor
    queue_size: int
    outbox: asyncio.Queue[Outgoing] = field(init=False)
    topics: dict[str, Topic] = field(default_factory=dict)
    sent: dict[str, Sent] = field(default_factory=dict)
    """Per topic: the view last queued for this client, which its next delta patches."""
    stale: set[str] = field(default_factory=set)
    """Topics whose next message must be a snapshot, because messages for them were dropped."""
    last_heard: float = field(default_factory=time.monotonic)
    behind: bool = False
    """Messages were dropped and the client has not read up to the resync yet."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One view decision at a time per connection: deltas leave in the order they were made."""

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(maxsize=self.queue_size)

    def offer(self, message: Message) -> None:
        """Queue a message; when the client is a whole queue behind, drop everything queued and
        restart each of its topics with a snapshot once it reads again."""
        try:
            self.outbox.put_nowait(message)
            return
        except asyncio.QueueFull:
            pass
        dropped = 1
        while not self.outbox.empty():
            if self.outbox.get_nowait() is not RESYNC_STALE:
                dropped += 1
        self.stale |= set(self.topics)
        self.outbox.put_nowait(RESYNC_STALE)
        DROPPED.inc(dropped)
        if not self.behind:
            self.behind = True
            log.warning(
                "gateway.client_too_slow", user=str(self.actor.user_id), queue=self.queue_size
            )

    def has_version(self, name: str, version: int | None) -> bool:
        last = self.sent.get(name)
        return (
            version is not None
            and last is not None
            and name not in self.stale
            and version <= last.version
        )

    def update(self, name: str, current: Sent) -> Message | None:
        """The message that brings this client from what it was last sent to ``current``."""
        last = self.sent.get(name)
        if last is None or name in self.stale:
            self.stale.discard(name)
            self.sent[name] = current
            RESYNCS.inc()
            return snapshot(name, current)
        if current.version < last.version:
            return None  # a store that answers from behind (a replica) must not move a client back
        patch = merge_patch(last.view, current.view)
        if not patch and current.version == last.version:
            return None
        self.sent[name] = current
        return protocol.Delta(topic=name, version=current.version, patch=patch)


class Subscription(Protocol):
    async def unsubscribe(self, limit: int = 0) -> None: ...


class NatsClient(Protocol):
    """The part of ``nats.aio.client.Client`` the hub uses."""

    @property
    def is_connected(self) -> bool: ...

    async def flush(self, timeout: int = ...) -> None: ...

    async def subscribe(
        self, subject: str, *, cb: Callable[[Msg], Awaitable[None]], pending_msgs_limit: int
    ) -> Subscription: ...


class Hub:
    """Every connection of one gateway process, and the NATS subjects they need."""

    def __init__(self, store: ReadStore, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = HubSettings() if settings is None else settings
        self.nats: NatsClient | None = None
        self.connections: set[Connection] = set()
        self._followers: dict[str, set[tuple[Connection, str]]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._subscribing = asyncio.Lock()
        self._resync_task: asyncio.Task[None] | None = None
        self._listing: set[tuple[Connection, str]] = set()
        """List topics being re-read now; ``_listing_again``: those rung meanwhile."""
        self._listing_again: set[tuple[Connection, str]] = set()
        self._ping: NatsPing | None = None

    # --- life cycle --------------------------------------------------------------------

    async def start(self, nats_client: NatsClient) -> None:
        self.nats = nats_client
        self._resync_task = asyncio.create_task(self._resync_forever(), name="gateway-resync")

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
        for connection in list(self.connections):
            await self.close(connection)

    @property
    def ready(self) -> bool:
        """Connected to NATS, as far as the client knows. A frozen server keeps the connection
        open for minutes (until the client's pings go unanswered): see :meth:`nats_answers`."""
        return self.nats is not None and self.nats.is_connected

    async def nats_answers(self, timeout: float) -> bool:
        """Connected, and the server answers a ping within ``timeout`` seconds: change notices
        can reach this gateway now. After a restart nats-py reconnects and subscribes again by
        itself, so this turns true again without the hub doing anything."""
        if self.nats is None:
            return False
        if self._ping is None:
            self._ping = NatsPing(self.nats)
        return await self._ping.answers(timeout)

    @property
    def nats_subjects(self) -> set[str]:
        return set(self._subscriptions)

    # --- connections -------------------------------------------------------------------

    def open(self, actor: Actor) -> Connection:
        connection = Connection(actor, self.settings.queue)
        self.connections.add(connection)
        CONNECTIONS.inc()
        return connection

    async def close(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        CONNECTIONS.dec()
        async with connection.lock:
            for name in list(connection.topics):
                await self._forget(connection, name)

    # --- topics ------------------------------------------------------------------------

    async def subscribe(
        self, connection: Connection, name: str, last_version: int | None = None
    ) -> None:
        """Follow ``name``: a snapshot, or ``subscribed`` if the client already has this version."""
        try:
            topic = Topic.parse(name, connection.actor)
            limit = self.settings.max_topics
            if name not in connection.topics and len(connection.topics) >= limit:
                raise TooManyTopics(f"follow at most {limit} topics per connection")
        except (BadTopic, TooManyTopics) as error:
            connection.offer(refusal(name, error))
            return
        async with connection.lock:
            if name not in connection.topics:
                # Listen before reading: a change committed during the read still rings.
                connection.topics[name] = topic
                SUBSCRIPTIONS.inc()
                await self._follow(topic.subject(connection.actor.centre_id), connection, name)
            try:
                version, view = await self._view(connection.actor, topic)
            except (Forbidden, access.NotVisible) as error:
                await self._forget(connection, name)
                connection.offer(refusal(name, error))
                return
            except Exception:
                await self._forget(connection, name)
                log.exception(
                    "gateway.subscribe_failed", topic=name, user=str(connection.actor.user_id)
                )
                connection.offer(
                    protocol.Refused(
                        topic=name,
                        status=503,
                        detail="the read models cannot be read now; subscribe again",
                    )
                )
                return
            current = Sent(version, view)
            connection.stale.discard(name)
            connection.sent[name] = current
            if last_version == version:
                connection.offer(protocol.Subscribed(topic=name, version=version))
            else:
                connection.offer(snapshot(name, current))

    async def unsubscribe(self, connection: Connection, name: str) -> None:
        async with connection.lock:
            await self._forget(connection, name)

    async def _forget(self, connection: Connection, name: str) -> None:
        topic = connection.topics.pop(name, None)
        connection.sent.pop(name, None)
        connection.stale.discard(name)
        if topic is not None:
            SUBSCRIPTIONS.dec()
            await self._unfollow(topic.subject(connection.actor.centre_id), connection, name)

    async def _follow(self, subject: str, connection: Connection, name: str) -> None:
        self._followers.setdefault(subject, set()).add((connection, name))
        async with self._subscribing:
            if subject in self._followers and subject not in self._subscriptions:
                assert self.nats is not None, "start the hub before subscribing"
                self._subscriptions[subject] = await self.nats.subscribe(
                    subject, cb=self._on_notice, pending_msgs_limit=NOTICES_PENDING_PER_SUBJECT
                )
                NATS_SUBJECTS.inc()

    async def _unfollow(self, subject: str, connection: Connection, name: str) -> None:
        followers = self._followers.get(subject)
        if followers is not None:
            followers.discard((connection, name))
            if not followers:
                del self._followers[subject]
        async with self._subscribing:
            if subject not in self._followers and subject in self._subscriptions:
                subscription = self._subscriptions.pop(subject)
                NATS_SUBJECTS.dec()
                with contextlib.suppress(nats.errors.Error):  # a closed connection keeps none
                    await subscription.unsubscribe()

    # --- changes -----------------------------------------------------------------------

    async def _on_notice(self, message: Msg) -> None:
        try:
            version: int | None = decode_notice(message.data).version
        except msgspec.DecodeError:
            version = None
        followers = list(self._followers.get(message.subject, ()))
        # A list's version is not the version of the one document the notice is about.
        listing = list(
            self._followers.get(f"{message.subject.rsplit('.', 1)[0]}.{EVERY_DOCUMENT}", ())
        )
        await asyncio.gather(
            *(self._refresh_logged(connection, name, version) for connection, name in followers),
            *(self._refresh_listing(connection, name) for connection, name in listing),
        )

    async def _refresh_listing(self, connection: Connection, name: str) -> None:
        """Re-read a list once however many of its documents ring while it is being read: a
        notice during a read earns one more read, never one per notice."""
        follower = (connection, name)
        if follower in self._listing:
            self._listing_again.add(follower)
            return
        self._listing.add(follower)
        try:
            while True:
                self._listing_again.discard(follower)
                await self._refresh_logged(connection, name)
                if follower not in self._listing_again:
                    return
        finally:
            self._listing.discard(follower)

    async def refresh(
        self, connection: Connection, name: str, notified_version: int | None = None
    ) -> None:
        """Send this viewer what changed in their view of ``name`` (a snapshot if it is stale).

        ``notified_version``: the document version a notice announced; a viewer who was already
        sent that version needs no read.
        """
        async with connection.lock:
            topic = connection.topics.get(name)
            if topic is None or connection.has_version(name, notified_version):
                return
            try:
                version, view = await self._view(connection.actor, topic)
            except (Forbidden, access.NotVisible) as error:
                await self._forget(connection, name)
                connection.offer(refusal(name, error))
                return
            message = connection.update(name, Sent(version, view))
            if message is not None:
                connection.offer(message)

    async def resync_stale(self, connection: Connection) -> None:
        """The client read up to where messages were dropped: fresh snapshots for their topics."""
        connection.behind = False
        for name in list(connection.stale):
            await self._refresh_logged(connection, name)

    async def resync_all(self) -> None:
        """Re-read every followed view: what a lost notice would have announced goes out now."""
        gate = asyncio.Semaphore(RESYNC_CONCURRENCY)

        async def one(connection: Connection, name: str) -> None:
            async with gate:
                await self._refresh_logged(connection, name)

        await asyncio.gather(
            *(
                one(connection, name)
                for connection in list(self.connections)
                for name in list(connection.topics)
            )
        )

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            await self.resync_all()

    async def _refresh_logged(
        self, connection: Connection, name: str, notified_version: int | None = None
    ) -> None:
        try:
            await self.refresh(connection, name, notified_version)
        except Exception:
            # The periodic check tries again; one failed read must not stop the others.
            log.exception("gateway.refresh_failed", topic=name, user=str(connection.actor.user_id))

    async def _view(self, actor: Actor, topic: Topic) -> tuple[int, dict[str, Any]]:
        view = await anyio.to_thread.run_sync(self._read_view, actor, topic)
        return view.version, view.data

    def _read_view(self, actor: Actor, topic: Topic) -> access.View:
        if topic.kind == SESSION.name:
            return access.control_center(self.store, actor, UUID(topic.key), utcnow())
        if topic.kind == STUDENT.name:
            return access.student_overview(self.store, actor, UUID(topic.key), utcnow())
        if topic.kind == CLASS.name:
            return access.class_roster(self.store, actor, UUID(topic.key))
        if topic.kind == INBOX.name:
            require(actor, Permission.NOTIFICATIONS_OWN)
            return notification_views.inbox(self.store, actor)
        if topic.kind == CATCH_UP.name:
            return access.catch_up_list(
                self.store, actor, access.CatchUpFilter(limit=200), utcnow()
            )
        return access.my_day(self.store, actor, None, utcnow())
