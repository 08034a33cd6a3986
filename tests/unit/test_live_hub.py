"""The gateway's hub without a network: bounded queues, deltas, NATS subscription refcounts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.live_gateway import hub as hub_module
from services.live_gateway import protocol
from services.live_gateway.app import handle_message
from services.live_gateway.hub import (
    RESYNC_STALE,
    Connection,
    Frame,
    Hub,
    ResyncStale,
    Settings,
    Subscription,
    wire,
)
from shared import events
from shared.readmodels import access, views
from shared.readmodels.deltas import DeltaNotice, notice_for
from shared.readmodels.documents import SESSION
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.store.transaction import resolve
from shared.readmodels.views import apply_merge_patch
from shared.readmodels.views.control_center import patch_between
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, DEMO_PEOPLE, demo_person
from tests.readside import demo_events, read_store

EVENTS = demo_events()
HELP_REQUESTS = 2
"""The demo history ends with two help requests in the live session."""


def in_memory(subject: str, payload: bytes) -> Msg:
    """A core NATS message as the client hands it to a subscription's callback; delivered in
    memory, it has no client to reply through."""
    return Msg(cast(Client, None), subject=subject, data=payload)


class FakeNats:
    """Core NATS subscriptions, in memory (the hub's ``NatsClient``); ``ring`` delivers a
    notice as the server would."""

    is_connected = True

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []
        self._callbacks: dict[str, Callable[[Msg], Awaitable[None]]] = {}

    async def subscribe(
        self, subject: str, *, cb: Callable[[Msg], Awaitable[None]], pending_msgs_limit: int
    ) -> Subscription:
        await asyncio.sleep(0)  # a real client yields while it sends SUB
        self.subscribed.append(subject)
        self._callbacks[subject] = cb
        fake = self

        class InMemorySubscription:
            async def unsubscribe(self, limit: int = 0) -> None:
                fake.unsubscribed.append(subject)
                del fake._callbacks[subject]

        return InMemorySubscription()

    async def flush(self, timeout: int = 10) -> None:
        """The in-memory server has nothing in flight: it always answers at once."""

    @property
    def active(self) -> set[str]:
        return set(self._callbacks)

    async def ring(self, subject: str, payload: bytes) -> None:
        if subject in self._callbacks:
            await self._callbacks[subject](in_memory(subject, payload))


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def person(handle: str) -> Actor:
    who = demo_person(handle)
    return Actor(user_id=who.id, role=who.role, centre_id=DEMO_CENTRE)


def live_session() -> str:
    """John's live session, where the demo's last help requests are raised."""
    last, _ = EVENTS[-1]
    assert isinstance(last, events.HelpRequestRaised)
    return f"session:{last.session_id}"


@pytest.fixture
def store(tmp_path: Path) -> ReadStore:
    """The demo centre without its last two help requests (the tests raise them)."""
    store = read_store(tmp_path)
    apply_all(store, EVENTS[:-HELP_REQUESTS])
    return store


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(datetime.now(UTC))
    monkeypatch.setattr(hub_module, "utcnow", clock)
    return clock


@pytest_asyncio.fixture
async def hub(store: ReadStore, clock: Clock) -> AsyncIterator[Hub]:
    hub = Hub(store, Settings(queue=3, resync_seconds=3600, max_topics=2))
    await hub.start(FakeNats())
    yield hub
    await hub.stop()


def nats_of(hub: Hub) -> FakeNats:
    assert isinstance(hub.nats, FakeNats)
    return hub.nats


def drain(connection: Connection) -> list[dict[str, Any]]:
    """What the client receives: each queued message as it goes over the wire."""
    messages = []
    while not connection.outbox.empty():
        item = connection.outbox.get_nowait()
        assert not isinstance(item, ResyncStale)
        messages.append(msgspec.json.decode(wire(item).text))
    return messages


def demo_sessions() -> list[str]:
    """The demo centre's sessions, by id."""
    return sorted(
        {str(event.session_id) for event, _ in EVENTS if isinstance(event, events.SessionScheduled)}
    )


async def following_every_session(hub: Hub, sessions: list[str]) -> Connection:
    """A supervisor of the demo centre following each of ``sessions``, what subscribing sent
    them drained."""
    supervisor = hub.open(
        Actor(user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=DEMO_CENTRE)
    )
    for session in sessions:
        await hub.subscribe(supervisor, f"session:{session}")
    drain(supervisor)
    return supervisor


async def raise_help_requests(hub: Hub) -> None:
    """Project the last events and ring their notices, as the projection service does."""
    for change in apply_all(hub.store, EVENTS[-HELP_REQUESTS:]):
        await nats_of(hub).ring(*notice_for(change))


async def test_a_notice_becomes_a_delta_that_patches_the_snapshot_into_the_fresh_view(
    hub: Hub,
) -> None:
    connection = hub.open(person("john"))
    await hub.subscribe(connection, live_session())
    (snapshot,) = drain(connection)
    assert snapshot["type"] == "snapshot" and snapshot["data"]["openHelpRequests"] == 0

    await raise_help_requests(hub)
    (delta,) = drain(connection)
    assert delta["type"] == "delta" and delta["version"] > snapshot["version"]
    await hub.subscribe(connection, live_session())
    (fresh,) = drain(connection)
    assert apply_merge_patch(snapshot["data"], delta["patch"]) == fresh["data"]
    assert (
        fresh["data"]["openHelpRequests"] == HELP_REQUESTS and fresh["version"] == delta["version"]
    )


async def test_a_notice_the_viewer_already_has_costs_no_read(hub: Hub, clock: Clock) -> None:
    connection = hub.open(person("john"))
    topic = live_session()
    await hub.subscribe(connection, topic)
    (snapshot,) = drain(connection)
    subject = next(iter(nats_of(hub).active))
    clock.now += timedelta(minutes=1)  # the live session's timers moved: a read would show it

    old = DeltaNotice(
        kind=SESSION.name,
        key=topic.split(":")[1],
        centre_id=DEMO_CENTRE,
        version=snapshot["version"],
    )
    await nats_of(hub).ring(subject, msgspec.json.encode(old))
    assert drain(connection) == []

    newer = msgspec.structs.replace(old, version=old.version + 1)
    await nats_of(hub).ring(subject, msgspec.json.encode(newer))
    (delta,) = drain(connection)
    assert delta["version"] == snapshot["version"] and set(delta["patch"]) == {"timing"}


async def test_a_client_that_stops_reading_costs_a_bounded_queue_then_gets_snapshots(
    hub: Hub,
) -> None:
    connection = hub.open(person("john"))
    await hub.subscribe(connection, live_session())
    await hub.subscribe(connection, "my-day")
    for _ in range(50):
        connection.offer(protocol.Pong())
        assert connection.outbox.qsize() <= hub.settings.queue
    assert connection.stale == {live_session(), "my-day"} and connection.behind

    items = []
    while not connection.outbox.empty():
        items.append(connection.outbox.get_nowait())
    assert items[0] is RESYNC_STALE
    await hub.resync_stale(connection)  # what the writer does when it reaches the marker
    resent = drain(connection)
    assert {(m["type"], m["topic"]) for m in resent} == {
        ("snapshot", live_session()),
        ("snapshot", "my-day"),
    }
    assert connection.stale == set() and not connection.behind

    await raise_help_requests(hub)
    assert {m["type"] for m in drain(connection)} == {"delta"}, "back to deltas once caught up"


async def test_nothing_is_sent_when_nothing_changed(hub: Hub) -> None:
    connection = hub.open(person("john"))
    await hub.subscribe(connection, live_session())
    drain(connection)
    await hub.resync_all()
    assert drain(connection) == []


async def test_nats_subscriptions_follow_the_last_subscriber(hub: Hub) -> None:
    nats = nats_of(hub)
    connections = [hub.open(person("john")) for _ in range(5)]
    await asyncio.gather(*(hub.subscribe(c, live_session()) for c in connections))
    assert len(nats.subscribed) == 1 and len(hub.nats_subjects) == 1
    await hub.subscribe(connections[0], "my-day")
    assert len(hub.nats_subjects) == 2

    for connection in connections[:-1]:
        await hub.close(connection)
    assert len(nats.unsubscribed) == 1, "My Day is gone, the session still has a follower"
    await hub.unsubscribe(connections[-1], live_session())
    assert sorted(nats.unsubscribed) == sorted(nats.subscribed) and hub.nats_subjects == set()


async def test_refused_subscriptions_leave_no_interest_behind(hub: Hub) -> None:
    maria = hub.open(person("maria"))  # another tutor
    await hub.subscribe(maria, live_session())
    await hub.subscribe(maria, "session:not-a-uuid")
    assert [(m["status"], m["topic"]) for m in drain(maria)] == [
        (403, live_session()),
        (400, "session:not-a-uuid"),
    ]
    assert hub.nats_subjects == set() and maria.topics == {}


async def test_a_connection_follows_at_most_max_topics(hub: Hub) -> None:
    connection = hub.open(person("john"))
    await hub.subscribe(connection, live_session())
    await hub.subscribe(connection, "my-day")
    await hub.subscribe(connection, "session:" + "0" * 32)
    assert drain(connection)[-1]["status"] == 429


async def test_a_tutor_who_loses_the_session_stops_following_it(hub: Hub) -> None:
    connection = hub.open(person("john"))
    topic = live_session()
    await hub.subscribe(connection, topic)
    drain(connection)
    key = topic.split(":")[1]
    stored = hub.store.get(SESSION, key)
    assert stored is not None
    with hub.store.transaction() as tx:  # as if the session were handed to Maria
        tx.put_many(
            [
                replace(
                    stored,
                    doc=msgspec.structs.replace(stored.doc, tutor_id=str(person("maria").user_id)),
                )
            ]
        )

    await hub.refresh(connection, topic)
    assert [(m["type"], m["status"]) for m in drain(connection)] == [("error", 403)]
    assert connection.topics == {} and hub.nats_subjects == set()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"type":"subscribe"}',
        '{"type":"dance"}',
        '{"type":"subscribe","topic":"my-day","lastVersion":true}',
        '{"type":"subscribe","topic":"my-day","lastVersion":-1}',
    ],
)
async def test_unreadable_client_messages_are_answered_with_400(hub: Hub, text: str) -> None:
    connection = hub.open(person("john"))
    await handle_message(hub, connection, text)
    (error,) = drain(connection)
    assert error["type"] == "error" and error["status"] == 400 and connection.topics == {}


async def test_client_messages(hub: Hub) -> None:
    connection = hub.open(person("john"))
    await handle_message(hub, connection, '{"type":"ping"}')
    await handle_message(hub, connection, '{"type":"subscribe","topic":"my-day","extra":1}')
    (pong, snapshot) = drain(connection)
    assert pong == {"type": "pong"} and snapshot["type"] == "snapshot"
    await handle_message(
        hub,
        connection,
        f'{{"type":"subscribe","topic":"my-day","lastVersion":{snapshot["version"]}}}',
    )
    await handle_message(hub, connection, '{"type":"unsubscribe","topic":"my-day"}')
    assert drain(connection) == [
        {"type": "subscribed", "topic": "my-day", "version": snapshot["version"]},
        {"type": "unsubscribed", "topic": "my-day"},
    ]


def test_settings_come_from_the_environment_and_must_be_positive() -> None:
    from shared.settings import load

    settings = load(
        Settings,
        {
            "TUTORPULSE_GATEWAY_QUEUE": "8",
            "TUTORPULSE_GATEWAY_PING_SECONDS": "2.5",
            "TUTORPULSE_GATEWAY_RESYNC_SECONDS": "1",
        },
    )
    assert (settings.queue, settings.ping_seconds, settings.resync_seconds) == (8, 2.5, 1)
    assert load(Settings, {}) == Settings(queue=64, ping_seconds=15, resync_seconds=5)
    with pytest.raises(ValueError, match="TUTORPULSE_GATEWAY_QUEUE must be positive"):
        load(Settings, {"TUTORPULSE_GATEWAY_QUEUE": "0"})
    with pytest.raises(ValueError):
        Settings(queue=0)


def test_student_and_class_topics_follow_their_documents() -> None:
    from services.live_gateway.hub import BadTopic, Topic

    john = Actor(
        user_id=demo_person("john").id, role=demo_person("john").role, centre_id=DEMO_CENTRE
    )
    student, cohort = demo_person("jane").id, "7a2f4b1e-0c6d-4e8a-9f3b-2d1c5e6a7b8c"
    assert Topic.parse(f"student:{student}", john).subject(DEMO_CENTRE) == (
        f"tp.delta.{DEMO_CENTRE}.student.{student}"
    )
    assert Topic.parse(f"class:{cohort}", john).subject(DEMO_CENTRE) == (
        f"tp.delta.{DEMO_CENTRE}.class.{cohort}"
    )
    for name in ("student:", "class:jane", "students:" + str(student), "tutor:" + str(student)):
        with pytest.raises(BadTopic):
            Topic.parse(name, john)


async def test_a_burst_of_catch_up_notices_costs_a_couple_of_list_reads(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = hub.open(person("david"))
    await hub.subscribe(staff, "catch-ups")
    assert nats_of(hub).subscribed == [f"tp.delta.{DEMO_CENTRE}.catch_up.*"]
    (snapshot,) = drain(staff)
    assert snapshot["type"] == "snapshot"
    reads = 0
    read_view = hub._read_view

    def counting(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return read_view(*args)

    monkeypatch.setattr(hub, "_read_view", counting)
    notice = DeltaNotice(kind="catch_up", key="x", centre_id=DEMO_CENTRE, version=1)
    burst = [
        in_memory(f"tp.delta.{DEMO_CENTRE}.catch_up.{i}", msgspec.json.encode(notice))
        for i in range(30)
    ]
    await asyncio.gather(*(hub._on_notice(message) for message in burst))
    assert 1 <= reads <= 2


def handle_of(user_id: UUID) -> str:
    return next(p.handle for p in DEMO_PEOPLE if p.id == user_id)


async def test_one_notice_is_read_once_per_view_and_no_role_sees_another_roles_view(
    hub: Hub, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tutor, two supervisors, the two students raising help and a parent follow one session:
    the supervisors share one read and one encoding, and each student's delta carries their
    own row and nothing of the other's."""
    topic = live_session()
    raisers = [e.student_id for e, _ in EVENTS[-HELP_REQUESTS:] if hasattr(e, "student_id")]
    first, second = (handle_of(student) for student in raisers)
    parent = demo_person(first).guardian
    assert parent is not None and demo_person(second).guardian != parent
    viewers = {
        "john": person("john"),
        "david": person("david"),
        "another supervisor": Actor(
            user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=DEMO_CENTRE
        ),
        first: person(first),
        second: person(second),
        parent: person(parent),
    }
    connections = {who: hub.open(actor) for who, actor in viewers.items()}
    snapshots = {}
    for who, connection in connections.items():
        await hub.subscribe(connection, topic)
        (snapshots[who],) = drain(connection)
    assert len(hub.audiences) == 5, "the supervisors are one audience, everyone else their own"

    views_read = 0
    session_reads = 0
    read_view, get, get_many = hub._read_view, hub.store.get, hub.store.get_many

    def counting_views(*args: Any) -> Any:
        nonlocal views_read
        views_read += 1
        return read_view(*args)

    def counting_gets(kind: Any, key: str, generation: int | None = None) -> Any:
        nonlocal session_reads
        session_reads += resolve(kind) is SESSION
        return get(kind, key, generation)

    def counting_get_many(kind: Any, keys: Any, generation: int | None = None) -> Any:
        nonlocal session_reads
        session_reads += resolve(kind) is SESSION
        return get_many(kind, keys, generation)

    monkeypatch.setattr(hub, "_read_view", counting_views)
    monkeypatch.setattr(hub.store, "get", counting_gets)
    monkeypatch.setattr(hub.store, "get_many", counting_get_many)
    changes = apply_all(hub.store, EVENTS[-HELP_REQUESTS:])
    session_change = [c for c in changes if c.kind == SESSION.name][-1]
    await nats_of(hub).ring(*notice_for(session_change))
    assert views_read == 5 and session_reads == 1, "one read of the session for all five views"

    frames = {}
    for who, connection in connections.items():
        item = connection.outbox.get_nowait()
        assert isinstance(item, Frame) and connection.outbox.empty()
        frames[who] = item
    assert frames["david"] is frames["another supervisor"], "encoded once for both"
    # Audiences whose deltas are alike share one frame: the tutor sees every row as the
    # supervisors do, the parent their child's as that child does; the students differ.
    assert frames["john"] is frames["david"] and frames[parent] is frames[first]
    assert len({id(frame) for frame in frames.values()}) == 3
    assert len({frame.text for frame in frames.values()}) == 3

    session_id = UUID(topic.split(":")[1])
    for who, actor in viewers.items():
        delta = msgspec.json.decode(frames[who].text)
        view = apply_merge_patch(snapshots[who]["data"], delta["patch"])
        assert view == access.control_center(hub.store, actor, session_id, clock.now).data
        rows = {row["studentId"] for row in view["students"]}
        if who in (first, second):
            assert rows == {str(demo_person(who).id)} and view["openHelpRequests"] == 1
            other = second if who == first else first
            assert str(demo_person(other).id) not in frames[who].text
            assert demo_person(other).name not in frames[who].text
        elif who == parent:
            assert str(demo_person(first).id) in rows
            assert str(demo_person(second).id) not in frames[who].text
        else:
            assert {str(s) for s in raisers} <= rows
            assert view["openHelpRequests"] == HELP_REQUESTS


async def test_the_periodic_check_reads_once_per_view_not_once_per_viewer(
    hub: Hub, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = live_session()
    supervisors = [
        hub.open(Actor(user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=DEMO_CENTRE))
        for _ in range(20)
    ]
    tutor = hub.open(person("john"))
    for connection in [*supervisors, tutor]:
        await hub.subscribe(connection, topic)
        drain(connection)
    reads = 0
    read_view = hub._read_view

    def counting(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return read_view(*args)

    monkeypatch.setattr(hub, "_read_view", counting)
    clock.now += timedelta(minutes=1)  # the live session's timers moved
    await hub.resync_all()
    assert reads == 2, "the supervisors' view and the tutor's"
    sent = [connection.outbox.get_nowait() for connection in supervisors]
    assert all(frame is sent[0] for frame in sent)
    (delta,) = drain(tutor)
    assert delta["type"] == "delta" and "timing" in delta["patch"]

    await hub.resync_all()  # the clock stood still: nothing to send
    assert reads == 4 and all(c.outbox.empty() for c in [*supervisors, tutor])


async def test_the_periodic_check_reads_its_views_a_slice_at_a_time(
    store: ReadStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each followed subject once per interval, spread over it: a burst of every view at once
    would hold up the notices behind it."""
    hub = Hub(store, Settings(queue=8, resync_seconds=0.3, max_topics=5))
    rung: list[list[str]] = []
    ring = hub._ring

    async def recording(subjects: dict[str, int | None]) -> None:
        rung.append(list(subjects))
        await ring(subjects)

    monkeypatch.setattr(hub, "_ring", recording)
    await hub.start(FakeNats())
    try:
        connection = hub.open(person("john"))
        for topic in (live_session(), "my-day", "notifications"):
            await hub.subscribe(connection, topic)
        drain(connection)
        clock.now += timedelta(minutes=1)  # the live session's timers moved
        for _ in range(200):
            if len(rung) >= 3:
                break
            await asyncio.sleep(0.05)
        first_cycle = rung[:3]
        assert all(len(part) == 1 for part in first_cycle)
        assert sorted(s for part in first_cycle for s in part) == sorted(hub.nats_subjects)
        assert live_session() in {m["topic"] for m in drain(connection) if m["type"] == "delta"}
    finally:
        await hub.stop()


async def test_a_round_of_many_sessions_reads_them_and_their_people_in_two_queries(
    store: ReadStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisor following every session of the centre: when all of them ring together,
    the round reads the sessions in one query and every tutor's and student's name in one
    more, not two reads per session (each a few round trips on PostgreSQL)."""
    sessions = demo_sessions()
    assert len(sessions) >= 5
    hub = Hub(store, Settings(queue=len(sessions) * 4, resync_seconds=3600, max_topics=100))
    await hub.start(FakeNats())
    try:
        supervisor = await following_every_session(hub, sessions)
        reads: list[str] = []
        get, get_many = store.get, store.get_many

        def counting_get(kind: Any, key: str, generation: int | None = None) -> Any:
            reads.append(resolve(kind).name)
            return get(kind, key, generation)

        def counting_get_many(kind: Any, keys: Any, generation: int | None = None) -> Any:
            reads.append(resolve(kind).name)
            return get_many(kind, keys, generation)

        monkeypatch.setattr(store, "get", counting_get)
        monkeypatch.setattr(store, "get_many", counting_get_many)
        clock.now += timedelta(minutes=1)  # the live sessions' timers moved
        await hub.resync_all()
        assert sorted(reads) == ["person", "session"]
        assert drain(supervisor), "the views were computed from what the round read"
    finally:
        await hub.stop()


async def test_a_notice_s_merge_patch_and_encoding_are_made_off_the_event_loop(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop writes to every socket; the round's worker thread computes each
    audience's merge patch and encodes it, so a large view's patch holds up no socket."""
    supervisors = [
        hub.open(Actor(user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=DEMO_CENTRE))
        for _ in range(3)
    ]
    tutor = hub.open(person("john"))
    snapshots = {}
    for connection in [*supervisors, tutor]:
        await hub.subscribe(connection, live_session())
        (snapshots[connection],) = drain(connection)
    loop_thread = threading.get_ident()
    patched_on: list[bool] = []

    def recording(before: Any, after: Any) -> Any:
        patched_on.append(threading.get_ident() == loop_thread)
        return views.merge_patch(before, after)

    def recording_between(before: Any, after: Any, heads: Any) -> Any:
        patched_on.append(threading.get_ident() == loop_thread)
        return patch_between(before, after, heads)

    monkeypatch.setattr(hub_module, "merge_patch", recording)
    monkeypatch.setattr(hub_module, "patch_between", recording_between)
    await raise_help_requests(hub)
    assert patched_on and not any(patched_on), "a merge patch was computed on the event loop"
    for connection in [*supervisors, tutor]:
        (delta,) = drain(connection)
        view = apply_merge_patch(snapshots[connection]["data"], delta["patch"])
        assert view["openHelpRequests"] == HELP_REQUESTS


def test_a_round_answers_the_same_people_once_and_each_caller_its_own_copy(
    store: ReadStore,
) -> None:
    """Every view of a session asks a round for the same people: one read, and a copy each, so
    that no view sees what another did with its answer."""
    reads = hub_module.RoundReads(store)
    people = sorted(str(demo_person(h).id) for h in ("john", "jane", "alex"))
    first = reads.get_many("person", people)
    assert set(first) == set(people) and reads.reads == 1
    first.clear()
    second = reads.get_many("person", people)
    assert set(second) == set(people) and second is not first and reads.reads == 1
    assert reads.get_many("person", people[:2]).keys() == set(people[:2]) and reads.reads == 1


async def test_notices_rung_while_every_reader_is_busy_are_all_read_once_one_finishes(
    store: ReadStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More sessions ring together than the readers' rounds take at once (one subject a round
    here): a ring wakes one idle reader, and a reader that finishes takes what was rung
    meanwhile, so every session is read, once, for the supervisor following them all."""
    monkeypatch.setattr(hub_module, "ROUND_SUBJECTS", 1)
    sessions = demo_sessions()
    assert len(sessions) > hub_module.READERS
    hub = Hub(store, Settings(queue=len(sessions) * 4, resync_seconds=3600, max_topics=100))
    await hub.start(FakeNats())
    try:
        supervisor = await following_every_session(hub, sessions)
        busy = threading.Semaphore(0)
        go_on = threading.Event()
        read_round = hub._read_round

        read: list[str] = []

        def held_round(audiences: list[Any], *args: Any) -> Any:
            read.extend(audience.topic.name for audience in audiences)
            busy.release()
            assert go_on.wait(10), "the test never let the rounds go on"
            return read_round(audiences, *args)

        monkeypatch.setattr(hub, "_read_round", held_round)
        clock.now += timedelta(minutes=1)  # every session's timing moved
        checked = asyncio.ensure_future(hub.resync_all())
        for _ in range(hub_module.READERS):  # every reader holds a round: the rest wait
            assert await asyncio.to_thread(busy.acquire, True, 10)
        go_on.set()
        await asyncio.wait_for(checked, 10)
        assert sorted(read) == [f"session:{session}" for session in sessions]
        assert drain(supervisor), "the sessions whose timing moved were sent their deltas"
    finally:
        await hub.stop()
