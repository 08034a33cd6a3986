"""Connections, their topics, and the NATS change notices that wake them.

A topic is what a client follows: ``session:<id>`` (a Control Center), ``my-day``,
``student:<id>`` (a student overview), ``class:<id>`` (a class roster), ``catch-ups`` or
``notifications`` (the follower's own inbox: a topic names no person, so nobody can follow
another's). The hub reads views through ``shared.readmodels.access`` (so the gateway shows
exactly what the query API shows) and sends each viewer the difference from the last view it
sent them as a JSON merge patch.

Viewers who see the same view of a topic form an :class:`Audience` (every supervisor of the
centre on a session; a tutor, a student or a parent alone, since their views are their own):
on a change notice the audience's view is computed once and its delta encoded once, for all of
its viewers. The notices rung meanwhile are read together in rounds, each round reading a
document once however many views use it (:class:`RoundReads`), so a burst of notices costs a
few reads, never one per viewer. Audiences of one session whose views differ only by their
rows (a tutor, each student, a parent) share the rest: a round works out each session's
Control Center once, and makes each audience's view of it and of the rows it may see
(:func:`~shared.readmodels.views.control_center.shaped_together`); audiences whose deltas
encode alike share one frame. Notices are only doorbells: every audience's view is also
re-read every ``resync_seconds`` (one read per audience, not per viewer), so a lost notice
delays a change but never loses it.

Views hold personal texts sealed (``docs/privacy.md``): views are read, compared and patched
sealed, so their tokens are stable; a frame is opened (:class:`~shared.privacy.Revealer`) for
its viewers' centre when it is encoded, once per audience frame, never per socket. A viewer's
copy holds the opened texts, which a patch of the sealed view cannot change: so the periodic
check also asks whether someone whose texts are in the view was erased since the audience's
last frame, and if so sends the audience a fresh snapshot (reading "[erased]") instead of a
delta (an erasure shows within ``resync_seconds`` plus the key cache's seconds). The sockets of
a person who was erased are closed at the periodic check too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import re
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Final, Protocol, TypeVar, cast
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
from shared.observability import tracing
from shared.observability.context import CORRELATION_HEADER, MAX_NOTICE_IDS, TRACEPARENT_HEADER
from shared.observability.metrics import CentreLabels, Children
from shared.observability.outage import OutageLog
from shared.privacy.erasure import ErasureCheck
from shared.privacy.reveal import MARK, Revealer
from shared.readmodels import access
from shared.readmodels.deltas import decode_notice, delta_subject
from shared.readmodels.documents import (
    CATCH_UP,
    CLASS,
    INBOX,
    PERSON,
    SESSION,
    STUDENT,
    TUTOR,
    Session,
)
from shared.readmodels.store import ReadStore, StoredDoc
from shared.readmodels.store.transaction import resolve
from shared.readmodels.views import merge_patch, name_order, utcnow
from shared.readmodels.views import notifications as notification_views
from shared.readmodels.views.control_center import HeadPatches, patch_between, shaped_together
from shared.tenancy import Actor, Forbidden, Permission, require
from shared.threads import outlasting_cancellation

log = structlog.get_logger(__name__)
GATEWAY_SERVICE = "live_gateway"
"""Whose tracer makes the send spans (the program's name, ``services.live_gateway.app``)."""

CONNECTIONS = Gauge(
    "tutorpulse_gateway_connections", "Open websocket connections", multiprocess_mode="livesum"
)
CENTRE_CONNECTIONS = Gauge(
    "tutorpulse_gateway_centre_connections",
    "Open websocket connections by centre (bounded: shared.observability.metrics.CentreLabels)",
    ["centre"],
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge("tutorpulse_gateway_subscriptions", "Topics followed, over all connections")
NATS_SUBJECTS = Gauge("tutorpulse_gateway_nats_subscriptions", "Notice subjects subscribed on NATS")
SENT = Counter("tutorpulse_gateway_messages_sent_total", "Messages written to clients", ["type"])
_SENT_BY_TYPE: dict[str, Any] = {}


def sent_counter(message_type: str) -> Any:
    """The ``SENT`` counter of one message type (looked up once, not once per message)."""
    counter = _SENT_BY_TYPE.get(message_type)
    if counter is None:
        counter = _SENT_BY_TYPE[message_type] = SENT.labels(message_type)
    return counter


RESYNCS = Counter(
    "tutorpulse_gateway_resyncs_total",
    "Fresh snapshots sent in place of messages dropped for a slow client",
)
DROPPED = Counter(
    "tutorpulse_gateway_dropped_total", "Messages dropped because a client read too slowly"
)
VIEWS_COMPUTED = Counter(
    "tutorpulse_gateway_views_computed_total",
    "Views computed for an audience (the viewers who see the same view) on a notice or check",
)
ROUND_READS = Counter(
    "tutorpulse_gateway_round_reads_total",
    "Read-model reads made by rounds of views (each document read once per round)",
)
ERASURE_SNAPSHOTS = Counter(
    "tutorpulse_gateway_erasure_snapshots_total",
    "Snapshots sent to an audience because someone in its view was erased since its last frame",
)
ERASED_CLOSED = Counter(
    "tutorpulse_gateway_erased_closed_total",
    "Sockets closed because the person they belong to was erased",
)

NOTICES_PENDING_PER_SUBJECT = 256
"""Notices waiting to be handled per subject; beyond it NATS drops them (the periodic check
still delivers the change), so a slow gateway cannot pile up memory."""
READERS = 4
"""Rounds of reads in flight at once (each in a worker thread)."""
RESYNC_SLICE_SECONDS = 0.1
"""The periodic check re-reads a slice of the audiences this often, not all of them at once."""
ROUND_SUBJECTS = 64
"""Subjects (with all their audiences) read in one round, through one :class:`RoundReads`."""

Message = protocol.ServerMessage
R = TypeVar("R")


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

    @cached_property
    def document(self) -> UUID:
        """The id of the one document followed (a session, a student, a class), parsed once
        for every view of the topic."""
        return UUID(self.key)


class ResyncStale:
    """Queued after messages were dropped: the writer asks for fresh snapshots on reaching it."""


RESYNC_STALE: Final = ResyncStale()


@dataclass(frozen=True, slots=True)
class Frame:
    """A message encoded once for every viewer of an audience (``type``: its wire type), its
    sealed texts already opened for their centre: it goes over the socket as it is."""

    type: str
    text: str
    wire: bytes | None = field(default=None, repr=False, compare=False)
    """The websocket text frame that carries ``text`` from a server (no extension: per-message
    compression makes each socket's frame its own), made once for every viewer the frame goes
    to, from the bytes ``text`` was decoded from (:meth:`encoded`); None for a frame that goes
    through the ASGI server's ``send``."""

    @classmethod
    def of(cls, message: Message) -> Frame:
        return cls.encoded(protocol.type_of(message), protocol.encode(message))

    @classmethod
    def encoded(cls, kind: str, data: bytes) -> Frame:
        """A frame of wire type ``kind`` whose text is the UTF-8 JSON ``data``."""
        return cls(kind, data.decode(), text_frame(data))


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked websocket text frame of ``payload`` (RFC 6455, section 5.2), as a
    server sends it: the same bytes as ``websockets``' own serialisation, without its checks
    and copies (``tests/unit/test_live_direct.py`` compares them)."""
    length = len(payload)
    if length < 126:
        head = _SHORT.pack(_FIN_TEXT, length)
    elif length < 65536:
        head = _MEDIUM.pack(_FIN_TEXT, 126, length)
    else:
        head = _LONG.pack(_FIN_TEXT, 127, length)
    return head + payload


_FIN_TEXT: Final = 0x81
"""FIN and the text opcode."""
_SHORT, _MEDIUM, _LONG = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")


Outgoing = Message | Frame | ResyncStale
"""What a connection's outbox holds: a :class:`Frame` goes out as it is; a message is encoded
(and its sealed texts opened, :meth:`Hub.outgoing`) by the connection's writer."""


def wire(item: Message | Frame) -> Frame:
    """A queued message encoded as it is (its sealed texts left sealed)."""
    return item if isinstance(item, Frame) else Frame.of(item)


_PERSON_IN_TOKEN = re.compile(rb"pd1\.([A-Za-z0-9_-]{22})\.[0-9a-f]{12}\.")
"""The person a sealed text names (``shared.privacy.cipher``), in encoded JSON."""


def people_in(data: bytes) -> set[UUID]:
    """The people whose sealed texts are in ``data`` (encoded JSON)."""
    if MARK not in data:
        return set()
    return {
        UUID(bytes=base64.urlsafe_b64decode(found + b"=="))
        for found in set(_PERSON_IN_TOKEN.findall(data))
    }


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
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the gateway ends the connection itself (:meth:`cut`)."""
    cut_off_reason: str = ""
    direct: Callable[[Frame], bool] | None = None
    """Writes a frame straight to the socket if it can take it now (True), without a trip
    through the outbox and the writer's task; None: every message goes through the outbox."""
    writing: bool = False
    """The writer holds an item taken from the outbox and has not written it yet."""

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(maxsize=self.queue_size)

    def cut(self, reason: str) -> None:
        """End the connection (its socket is closed with ``reason``)."""
        if not self.cut_off.is_set():
            self.cut_off_reason = reason
            self.cut_off.set()

    def offer(self, message: Message | Frame) -> None:
        """Queue a message; when the client is a whole queue behind, drop everything queued and
        restart each of its topics with a snapshot once it reads again.

        A frame goes straight to the socket when nothing is queued before it (so messages
        leave in the order they were offered) and the socket takes it now."""
        direct = self.direct
        if (
            direct is not None
            and not self.writing
            and isinstance(message, Frame)
            and self.outbox.empty()
            and direct(message)
        ):
            return
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


SHARED_KINDS: Final = frozenset({SESSION.name, STUDENT.name, CLASS.name, CATCH_UP.name})
"""Documents that every role of ``access.FULL_VIEW`` sees whole, whoever they are."""


def audience_of(actor: Actor, topic: Topic) -> Hashable:
    """Who sees exactly the view of ``topic`` that ``actor`` sees (and is let in or refused
    alike): every supervisor or admin of the same role in the centre, for the documents they
    see whole; otherwise the person alone (a tutor is refused another's session, a student sees
    their own row, a parent their children's, My Day and the inbox are one's own)."""
    if actor.role in access.FULL_VIEW and topic.kind in SHARED_KINDS:
        return (actor.centre_id, actor.role)
    return actor


@dataclass(eq=False)
class Audience:
    """The viewers of one topic who see the same view of it: each change is read, computed
    and encoded once for all of them."""

    topic: Topic
    actor: Actor
    """Whose view it is: for a shared audience, any of them (the view is the same)."""
    members: dict[Connection, None] = field(default_factory=dict)
    """The connections following it, in the order they came."""
    current: Sent | None = None
    """The view last computed for the audience; a member who was sent exactly this object is
    sent the audience's shared delta to the next one."""
    erased: frozenset[UUID] = frozenset()
    """The people in ``current`` who were erased when its frames were opened: someone erased
    since reads as their text in the viewers' copies until a snapshot replaces them."""


class RoundReads:
    """The read store for one round of reads: each document (or list of a centre's documents)
    is read once however many views of the round use it, so all views of a round also see the
    same state. Anything else goes to the store."""

    def __init__(self, store: ReadStore) -> None:
        self._store = store
        self._docs: dict[tuple[str, str], StoredDoc[Any] | None] = {}
        self._centres: dict[tuple[str, str], list[StoredDoc[Any]]] = {}
        self._found: dict[tuple[Any, tuple[str, ...]], dict[str, StoredDoc[Any]]] = {}
        """What ``get_many`` answered, by kind and keys: every view of a session asks for the
        same people's names."""
        self.reads = 0
        """Reads that reached the store."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, kind: Any, key: str, generation: int | None = None) -> StoredDoc[Any] | None:
        if generation is not None:
            return self._store.get(kind, key, generation)
        wanted = (resolve(kind).name, key)
        if wanted not in self._docs:
            self.reads += 1
            self._docs[wanted] = self._store.get(kind, key)
        return self._docs[wanted]

    def get_many(
        self, kind: Any, keys: Sequence[str], generation: int | None = None
    ) -> dict[str, StoredDoc[Any]]:
        if generation is not None:
            return self._store.get_many(kind, keys, generation)
        asked = (kind, tuple(keys))
        answered = self._found.get(asked)
        if answered is not None:
            return dict(answered)  # the caller's own copy, as the store gives
        of = resolve(kind).name
        missing = sorted({key for key in keys if (of, key) not in self._docs})
        if missing:
            self.reads += 1
            found = self._store.get_many(kind, missing)
            for key in missing:
                self._docs[(of, key)] = found.get(key)
        answered = {key: stored for key in keys if (stored := self._docs[(of, key)]) is not None}
        self._found[asked] = answered
        return dict(answered)

    def centre_docs(
        self, kind: Any, centre_id: str, generation: int | None = None
    ) -> list[StoredDoc[Any]]:
        if generation is not None:
            return self._store.centre_docs(kind, centre_id, generation)
        wanted = (resolve(kind).name, centre_id)
        if wanted not in self._centres:
            self.reads += 1
            self._centres[wanted] = self._store.centre_docs(kind, centre_id)
        return self._centres[wanted]


def prefetch(reads: RoundReads, topics: Sequence[Topic]) -> None:
    """Read the documents of a round's topics in one query per kind of document, and the
    names of the sessions' tutors and students in one more, before any view is computed: each
    view then finds them in ``reads`` instead of making its own round trips (three of them for
    one document on PostgreSQL). Nothing here decides what anyone sees: a view still checks
    the centre and the viewer's access to every document it uses."""
    by_kind: dict[str, set[str]] = {}
    for topic in topics:
        if topic.key != EVERY_DOCUMENT:
            by_kind.setdefault(topic.kind, set()).add(topic.key)
    people: set[str] = set()
    for kind, keys in by_kind.items():
        found = reads.get_many(kind, sorted(keys))
        if kind == SESSION.name:
            for stored in found.values():
                if isinstance(stored.doc, Session):
                    people.add(stored.doc.tutor_id)
                    people.update(stored.doc.students)
    if people:
        reads.get_many(PERSON, sorted(people))


@dataclass
class _Ring:
    """A subject rung and not read yet: the highest version announced (``None``: read in any
    case), and what its ringers wait on."""

    version: int | None
    done: asyncio.Future[None]
    correlations: str | None = None
    """What the notices were for (their ``Tp-Correlation-Id``s), for the delta's log line."""
    traceparent: str | None = None
    """With tracing on, the span of the first notice's apply, which the send continues."""


def _joined(first: str | None, second: str) -> str:
    """Two notices' correlation ids as one header value, at most ``MAX_NOTICE_IDS`` of them."""
    if not first:
        return second
    ids = dict.fromkeys([*first.split(","), *second.split(",")])
    return ",".join(list(ids)[:MAX_NOTICE_IDS])


def _same(last: Sent, previous: Sent | None) -> bool:
    """Whether a viewer was last sent the audience's last view (usually the very object; after
    subscribing, an equal one read on their own)."""
    return last is previous or (
        previous is not None and last.version == previous.version and last.view == previous.view
    )


@dataclass(slots=True)
class _Outcome:
    view: Sent | None = None
    refused: Exception | None = None
    base: Sent | None = None
    """The audience's view when the round read it, which ``delta`` patches."""
    delta: Frame | None = None
    """The shared delta from ``base`` to ``view`` (or, with ``resend``, the snapshot of
    ``view``), computed, encoded and opened in the round's thread (None: nothing to send to
    those who have ``base``)."""
    erased: frozenset[UUID] = frozenset()
    """The people in ``view`` who were erased when the round read it (if ``checked``)."""
    checked: bool = False
    """The round asked who in ``view`` was erased."""
    resend: bool = False
    """Someone in the view was erased since ``base``'s frames: ``delta`` is a snapshot."""


def shared_delta(
    name: str, previous: Sent | None, new: Sent, heads: HeadPatches | None = None
) -> protocol.Delta | None:
    """The delta of topic ``name`` that brings every viewer who was sent ``previous`` to
    ``new``; None if there is none to send (no previous view, an older one, or nothing
    changed). ``heads``: the differences of session parts worked out in this round."""
    if previous is None or new.version < previous.version:
        return None
    patch = (
        merge_patch(previous.view, new.view)
        if heads is None
        else patch_between(previous.view, new.view, heads)
    )
    if not patch and new.version == previous.version:
        return None
    return protocol.Delta(topic=name, version=new.version, patch=patch)


class _Shared:
    """What the audiences of one round share: a message the round encodes alike for several
    audiences (the same delta of a session to its tutor, its students and a parent, whose rows
    did not change) is opened and made a frame once, for every audience of the same centre; the
    difference between two pictures of a session is worked out once for the views made of them
    (:func:`~shared.readmodels.views.control_center.patch_between`)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._made: dict[tuple[str, bytes], Frame] = {}
        self.heads: HeadPatches = {}

    def delta(self, name: str, previous: Sent | None, new: Sent) -> protocol.Delta | None:
        return shared_delta(name, previous, new, self.heads)

    def frame(self, message: Message, centre_id: str) -> Frame:
        data = protocol.encode(message)
        frame = self._made.get((centre_id, data))
        if frame is None:
            frame = self._made[(centre_id, data)] = self._hub._frame_of(
                protocol.type_of(message), data, centre_id
            )
        return frame


class Hub:
    """Every connection of one gateway process, and the NATS subjects they need."""

    def __init__(
        self,
        store: ReadStore,
        settings: Settings | None = None,
        revealer: Revealer | None = None,
        erasures: ErasureCheck | None = None,
    ) -> None:
        """``revealer``: opens the sealed texts of every frame for its viewers' centre (None:
        frames leave sealed, as the read models hold them); ``erasures``: tells the people who
        were erased, whose sockets are closed at the periodic check (by default from the
        revealer's key store; None without a revealer)."""
        self.store = store
        self.settings = HubSettings() if settings is None else settings
        self.revealer = revealer
        if erasures is None and revealer is not None:
            erasures = ErasureCheck(revealer.keys)
        self.erasures = erasures
        self.nats: NatsClient | None = None
        self.connections: set[Connection] = set()
        self._centre_label = CentreLabels(self.settings.metrics)
        self._centre_connections: Children[Any] = Children(CENTRE_CONNECTIONS.labels)
        self._audiences: dict[str, dict[tuple[str, Hashable], Audience]] = {}
        """Per NATS subject: its audiences, by topic name and :func:`audience_of`."""
        self._subscriptions: dict[str, Subscription] = {}
        self._subscribing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rung: dict[str, _Ring] = {}
        """Subjects rung and not yet taken by a round, in the order they rang."""
        self._reading: set[str] = set()
        """Subjects a round is reading now: rung meanwhile, they wait for the next round."""
        self._idle: deque[asyncio.Future[None]] = deque()
        """Readers waiting for a subject to be rung, each on its own future: a ring wakes one
        of them, not all (each wake is a task switch on the event loop)."""
        self._waking = False
        """A reader was woken and has not looked for subjects yet: rings meanwhile wake no
        other, it takes them too."""
        self._executor: ThreadPoolExecutor | None = None
        """The threads rounds are read in (``READERS`` of them, one per round in flight)."""
        self._ping: NatsPing | None = None

    # --- life cycle --------------------------------------------------------------------

    async def start(self, nats_client: NatsClient) -> None:
        self.nats = nats_client
        self._spawn(self._resync_forever(), "gateway-resync")
        if self.erasures is not None:
            self._spawn(self._cut_off_erased_forever(), "gateway-erasures")
        self._executor = ThreadPoolExecutor(READERS, thread_name_prefix="gateway-round")
        for number in range(READERS):
            self._spawn(self._read_rounds(), f"gateway-reader-{number}")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ring in self._rung.values():  # nobody will read them now: let their ringers go
            if not ring.done.done():
                ring.done.set_result(None)
        self._rung.clear()
        if self._executor is not None:  # the rounds waited for their threads: none is busy
            self._executor.shutdown(wait=False)
            self._executor = None
        for connection in list(self.connections):
            await self.close(connection)

    def _spawn(self, work: Awaitable[None], name: str | None = None) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    @property
    def audiences(self) -> list[Audience]:
        return [a for audiences in self._audiences.values() for a in audiences.values()]

    # --- connections -------------------------------------------------------------------

    def open(self, actor: Actor) -> Connection:
        connection = Connection(actor, self.settings.queue)
        self.connections.add(connection)
        CONNECTIONS.inc()
        self._centre_connections[(self._centre_label(actor.centre_id),)].inc()
        return connection

    async def close(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        CONNECTIONS.dec()
        self._centre_connections[(self._centre_label(connection.actor.centre_id),)].dec()
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
                await self._follow(connection, topic)
            audience = self._audience(connection, topic)
            first = audience is not None and audience.current is None
            try:
                version, view, erased = await self._view(connection.actor, topic, erased=first)
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
            audience = self._audience(connection, topic)
            if audience is not None and audience.current is None:
                audience.current = current  # so this viewer takes the shared deltas at once
                audience.erased = erased
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
            await self._unfollow(connection, topic)

    def _audience_key(self, connection: Connection, topic: Topic) -> tuple[str, Hashable]:
        return topic.name, audience_of(connection.actor, topic)

    def _audience(self, connection: Connection, topic: Topic) -> Audience | None:
        subject = topic.subject(connection.actor.centre_id)
        return self._audiences.get(subject, {}).get(self._audience_key(connection, topic))

    async def _follow(self, connection: Connection, topic: Topic) -> None:
        subject = topic.subject(connection.actor.centre_id)
        audiences = self._audiences.setdefault(subject, {})
        key = self._audience_key(connection, topic)
        audience = audiences.get(key)
        if audience is None:
            audience = audiences[key] = Audience(topic, connection.actor)
        audience.members[connection] = None
        async with self._subscribing:
            if subject in self._audiences and subject not in self._subscriptions:
                assert self.nats is not None, "start the hub before subscribing"
                self._subscriptions[subject] = await self.nats.subscribe(
                    subject, cb=self._on_notice, pending_msgs_limit=NOTICES_PENDING_PER_SUBJECT
                )
                NATS_SUBJECTS.inc()

    async def _unfollow(self, connection: Connection, topic: Topic) -> None:
        subject = topic.subject(connection.actor.centre_id)
        audiences = self._audiences.get(subject)
        if audiences is not None:
            key = self._audience_key(connection, topic)
            audience = audiences.get(key)
            if audience is not None:
                audience.members.pop(connection, None)
                if not audience.members:
                    del audiences[key]
            if not audiences:
                del self._audiences[subject]
        async with self._subscribing:
            if subject not in self._audiences and subject in self._subscriptions:
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
        rung: dict[str, int | None] = {}
        if message.subject in self._audiences:
            rung[message.subject] = version
        # A list's version is not the version of the one document the notice is about.
        listing = f"{message.subject.rsplit('.', 1)[0]}.{EVERY_DOCUMENT}"
        if listing in self._audiences:
            rung[listing] = None
        headers = message.headers
        if headers:
            await self._ring(rung, headers.get(CORRELATION_HEADER), headers.get(TRACEPARENT_HEADER))
        else:
            await self._ring(rung)

    async def _ring(
        self,
        subjects: dict[str, int | None],
        correlations: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Have ``subjects`` read in a round that starts from now; return once it is sent.

        A subject rung again before a round takes it is read once (for the highest version
        announced); one rung while a round reads it is read once more after that round."""
        if not subjects:
            return
        waiting: list[asyncio.Future[None]] = []
        for subject, version in subjects.items():
            ring = self._rung.get(subject)
            if ring is None:
                future = asyncio.get_running_loop().create_future()
                ring = self._rung[subject] = _Ring(version, future, correlations, traceparent)
            else:
                if ring.version is not None:
                    ring.version = None if version is None else max(ring.version, version)
                if correlations and ring.correlations != correlations:
                    ring.correlations = _joined(ring.correlations, correlations)
                ring.traceparent = ring.traceparent or traceparent
            waiting.append(ring.done)
        self._wake_one()
        await asyncio.wait(waiting)  # waiting never cancels a round other ringers wait on too

    def _take(self) -> dict[str, _Ring]:
        taken: dict[str, _Ring] = {}
        for subject in list(self._rung):
            if subject in self._reading:
                continue
            taken[subject] = self._rung.pop(subject)
            self._reading.add(subject)
            if len(taken) >= ROUND_SUBJECTS:
                break
        return taken

    def _wake_one(self) -> None:
        """Wake one idle reader for the subjects rung, unless one woken already has not looked
        yet (it takes them too); with every reader busy, the first to finish takes them."""
        if self._waking:
            return
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking = True
                return

    async def _read_rounds(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = self._take()
            if not taken:
                waiter = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                finally:
                    self._waking = False
                continue
            self._waking = False
            if len(taken) >= ROUND_SUBJECTS and self._rung:
                self._wake_one()  # more than one round's worth: another reader takes the rest
            try:
                await self._round(taken)
            except Exception:
                # The periodic check tries again; one failed round must not stop the others.
                log.exception("gateway.round_failed", subjects=len(taken))
            finally:
                # Subjects rung while this round read them are taken by this reader next.
                for subject, ring in taken.items():
                    self._reading.discard(subject)
                    if not ring.done.done():
                        ring.done.set_result(None)

    async def _in_thread(self, function: Callable[..., R], *args: Any) -> R:
        """``function(*args)`` in one of the rounds' threads (in a copy of this context), as
        ``anyio.to_thread.run_sync`` would run it but with less work on the event loop per
        call (no capacity limiter, no cancel scope); a caller cancelled meanwhile still waits
        for it to finish, so no round reads on after the hub has stopped."""
        executor = self._executor
        if executor is None:
            return await anyio.to_thread.run_sync(function, *args)
        loop = asyncio.get_running_loop()
        return await outlasting_cancellation(
            loop.run_in_executor(executor, contextvars.copy_context().run, function, *args)
        )

    async def _round(self, taken: dict[str, _Ring]) -> None:
        """Read each audience of the subjects taken whose viewers lack the version announced,
        in one worker thread through one :class:`RoundReads`, then send each its delta."""
        audiences: list[Audience] = []
        causes: list[_Ring] = []
        for subject, ring in taken.items():
            for audience in list(self._audiences.get(subject, {}).values()):
                name = audience.topic.name
                if ring.version is not None and all(
                    member.has_version(name, ring.version) for member in audience.members
                ):
                    continue
                audiences.append(audience)
                causes.append(ring)
        if not audiences:
            return
        # Erasures are looked for on the rounds that read whatever the version (the periodic
        # check): a notice's round, the busy path, skips that reading of the whole view.
        checks = [cause.version is None for cause in causes]
        outcomes = await self._in_thread(self._read_round, audiences, checks)
        tracer = tracing.tracer(GATEWAY_SERVICE)
        for audience, outcome, cause in zip(audiences, outcomes, causes, strict=True):
            if outcome.view is not None:
                span = None
                if tracer is not None:  # tracing on: the send continues the apply's trace
                    span = tracing.start_span(
                        tracer,
                        f"send {audience.topic.name}",
                        cause.traceparent,
                        "producer",
                        attributes={"tutorpulse.viewers": len(audience.members)},
                    )
                self._deliver(audience, outcome.view, outcome)
                log.info(
                    "gateway.delta",
                    topic=audience.topic.name,
                    version=outcome.view.version,
                    centre=audience.actor.centre_id,
                    viewers=len(audience.members),
                    correlation_ids=cause.correlations.split(",") if cause.correlations else [],
                )
                if span is not None:
                    tracing.end(span, attributes={"tutorpulse.version": outcome.view.version})
            elif outcome.refused is not None:
                # Refused views are each viewer's own business (and rare): read them one by one.
                for member in list(audience.members):
                    self._spawn(self._refresh_logged(member, audience.topic.name))

    def _read_round(
        self, audiences: list[Audience], checks: Sequence[bool] | None = None
    ) -> list[_Outcome]:
        """Each audience's view, and the frame that brings its viewers to it; ``checks``: per
        audience, whether to ask who in the view was erased (by default for all)."""
        reads = RoundReads(self.store)
        store = cast(ReadStore, reads)
        now = utcnow()
        outcomes: list[_Outcome] = []
        try:
            prefetch(reads, [audience.topic for audience in audiences])
        except Exception as error:  # each view reads for itself, and fails, as it would have
            log.info("gateway.prefetch_failed", error=str(error))
        shared = _Shared(self)
        with shaped_together():
            for number, audience in enumerate(audiences):
                outcomes.append(self._outcome(store, audience, now, shared, checks, number))
        ROUND_READS.inc(reads.reads)
        VIEWS_COMPUTED.inc(len(audiences))
        return outcomes

    def _outcome(
        self,
        store: ReadStore,
        audience: Audience,
        now: datetime,
        shared: _Shared,
        checks: Sequence[bool] | None,
        number: int,
    ) -> _Outcome:
        """One audience's view in a round, and the frame that brings its viewers to it."""
        try:
            view = self._read_view(store, audience.actor, audience.topic, now)
            new = Sent(view.version, view.data)
            # The merge patch, its encoding and opening are made here, off the event loop,
            # against the audience's view as it is now; _deliver uses them if it has not
            # moved. Whom the view shows erased is asked before its frame is opened, so the
            # frame shows at least them erased.
            base = audience.current
            centre = audience.actor.centre_id
            check = checks is None or checks[number]
            erased = self._erased_in(centre, new.view) if check else audience.erased
            name = audience.topic.name
            if base is not None and not erased <= audience.erased:
                resent = shared.frame(snapshot(name, new), centre)
                return _Outcome(new, None, base, resent, erased, checked=True, resend=True)
            delta = shared.delta(name, base, new)
            frame = None if delta is None else shared.frame(delta, centre)
            return _Outcome(new, None, base, frame, erased, checked=check)
        except (Forbidden, access.NotVisible) as error:
            return _Outcome(refused=error)
        except Exception:
            # Nothing is sent: the periodic check reads it again.
            log.exception("gateway.refresh_failed", topic=audience.topic.name)
            return _Outcome()

    def _deliver(self, audience: Audience, new: Sent, computed: _Outcome | None = None) -> None:
        """Send every viewer of ``audience`` what brings them to ``new``: the shared delta,
        encoded once, to those who were sent the audience's last view; their own difference
        to the others; and a read of their own to those still subscribing. ``computed``: the
        round's outcome, whose delta is used if it was computed from the audience's last view."""
        previous = audience.current
        name = audience.topic.name
        if previous is not None and new.version < previous.version:
            return  # a store that answers from behind (a replica) must not move clients back
        shared: Message | Frame | None
        resend = False
        if computed is not None and computed.base is previous:
            shared, resend = computed.delta, computed.resend
        elif computed is not None and previous is not None and computed.resend:
            # Someone was erased, and another round moved the audience on meanwhile: each
            # viewer's writer encodes and opens the snapshot.
            shared, resend = snapshot(name, new), True
        else:
            shared = shared_delta(name, previous, new)
        audience.current = new
        if computed is not None and computed.checked and previous is not None:
            # (An audience with no view yet keeps what it knew: knowing less only resends.)
            audience.erased = computed.erased
        if resend:
            ERASURE_SNAPSHOTS.inc()
        for connection in list(audience.members):
            if name not in connection.topics:
                continue
            last = connection.sent.get(name)
            if last is None:  # still subscribing: its own read decides, then this one
                self._spawn(self._refresh_logged(connection, name, new.version))
            elif resend and shared is not None:
                # The copies show the erased person's texts: every viewer starts again from
                # the snapshot, whatever they were sent last.
                connection.stale.discard(name)
                connection.sent[name] = new
                connection.offer(shared)
            elif name not in connection.stale and _same(last, previous):
                connection.sent[name] = new
                if shared is not None:
                    connection.offer(shared)
            else:
                message = connection.update(name, new)
                if message is not None:
                    connection.offer(message)

    async def refresh(
        self, connection: Connection, name: str, notified_version: int | None = None
    ) -> None:
        """Send this viewer what changed in their view of ``name`` (a snapshot if it is stale),
        read for them alone.

        ``notified_version``: the document version a notice announced; a viewer who was already
        sent that version needs no read.
        """
        async with connection.lock:
            topic = connection.topics.get(name)
            if topic is None or connection.has_version(name, notified_version):
                return
            try:
                version, view, _ = await self._view(connection.actor, topic)
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
        """Re-read every followed view, once per audience: what a lost notice would have
        announced goes out now."""
        await self._ring(dict.fromkeys(self._audiences))

    async def _resync_forever(self) -> None:
        """Re-read every audience once per ``resync_seconds``, a slice of them every
        ``RESYNC_SLICE_SECONDS``: all at once, the burst would hold up the notices behind it."""
        loop = asyncio.get_running_loop()
        interval = self.settings.resync_seconds
        await asyncio.sleep(interval)
        while True:
            started = loop.time()
            subjects = list(self._audiences)
            slices = max(1, min(len(subjects), round(interval / RESYNC_SLICE_SECONDS)))
            for number in range(slices):
                await asyncio.sleep(max(0.0, started + number * interval / slices - loop.time()))
                part = subjects[number::slices]
                await self._ring({s: None for s in part if s in self._audiences})
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def _refresh_logged(
        self, connection: Connection, name: str, notified_version: int | None = None
    ) -> None:
        try:
            await self.refresh(connection, name, notified_version)
        except Exception:
            # The periodic check tries again; one failed read must not stop the others.
            log.exception("gateway.refresh_failed", topic=name, user=str(connection.actor.user_id))

    async def _view(
        self, actor: Actor, topic: Topic, *, erased: bool = False
    ) -> tuple[int, dict[str, Any], frozenset[UUID]]:
        """The view, and with ``erased`` the people in it who were erased."""

        def read() -> tuple[int, dict[str, Any], frozenset[UUID]]:
            view = self._read_view(self.store, actor, topic, utcnow())
            gone = self._erased_in(actor.centre_id, view.data) if erased else frozenset()
            return view.version, view.data, gone

        return await anyio.to_thread.run_sync(read)

    # --- personal texts ----------------------------------------------------------------

    def _erased_in(self, centre_id: str, view: dict[str, Any]) -> frozenset[UUID]:
        """The people whose sealed texts are in ``view`` and who were erased (in a worker
        thread: it may read the key store)."""
        if self.revealer is None:
            return frozenset()
        revealer = self.revealer
        people = people_in(msgspec.json.encode(view))
        return frozenset(person for person in people if revealer.erased(centre_id, person))

    def _frame_of(self, kind: str, data: bytes, centre_id: str) -> Frame:
        """A message of wire type ``kind`` encoded as ``data``, its sealed texts opened for
        ``centre_id`` (in a worker thread: opening may read the key store)."""
        if self.revealer is not None:
            data = self.revealer.json(data, centre_id)
        return Frame.encoded(kind, data)

    async def outgoing(self, connection: Connection, item: Message | Frame) -> Frame:
        """What goes over ``connection``'s socket for a queued item: a frame as it is; a
        message encoded, its sealed texts opened for the connection's centre."""
        if isinstance(item, Frame):
            return item
        data = protocol.encode(item)
        if self.revealer is None or MARK not in data:
            return Frame(protocol.type_of(item), data.decode())
        opened = await anyio.to_thread.run_sync(
            self.revealer.json, data, connection.actor.centre_id
        )
        return Frame(protocol.type_of(item), opened.decode())

    async def erased(self, actor: Actor) -> bool:
        """Whether ``actor`` is a person whose data was erased (their tokens no longer work);
        :class:`~shared.privacy.erasure.ErasureCheckUnavailable` when it cannot be told."""
        if self.erasures is None:
            return False
        return await anyio.to_thread.run_sync(self.erasures.erased, actor.centre_id, actor.user_id)

    async def _cut_off_erased_forever(self) -> None:
        """Every ``resync_seconds``, close the sockets of people who were erased meanwhile."""
        outage = OutageLog("gateway.erasure_check")
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            try:
                await self.cut_off_erased()
            except Exception as error:  # the key store away: the next check tries again
                outage.failed(f"{type(error).__name__}: {error}")
            else:
                outage.succeeded()

    async def cut_off_erased(self) -> int:
        """Close the sockets of every connected person who was erased; how many."""
        checks = self.erasures
        if checks is None or not self.connections:
            return 0
        people = {(c.actor.centre_id, c.actor.user_id) for c in self.connections}

        def erased_people() -> set[tuple[str, UUID]]:
            return {person for person in people if checks.erased(*person)}

        erased = await anyio.to_thread.run_sync(erased_people)
        cut = 0
        for connection in list(self.connections):
            if (connection.actor.centre_id, connection.actor.user_id) in erased:
                connection.cut("this person's data was erased: their tokens no longer work")
                cut += 1
        if cut:
            ERASED_CLOSED.inc(cut)
            log.info("gateway.erased_people_cut_off", people=len(erased), sockets=cut)
        return cut

    def _read_view(
        self, store: ReadStore, actor: Actor, topic: Topic, now: datetime
    ) -> access.View:
        if topic.kind == SESSION.name:
            return access.control_center(store, actor, topic.document, now)
        if topic.kind == STUDENT.name:
            return access.student_overview(store, actor, topic.document, now)
        if topic.kind == INBOX.name:
            require(actor, Permission.NOTIFICATIONS_OWN)
            return notification_views.inbox(store, actor)
        if topic.kind == CATCH_UP.name:
            return access.catch_up_list(store, actor, access.CatchUpFilter(limit=200), now)
        order = name_order(self.revealer, actor.centre_id)  # the frame is opened for it too
        if topic.kind == CLASS.name:
            return access.class_roster(store, actor, topic.document, order)
        return access.my_day(store, actor, None, now, order)
