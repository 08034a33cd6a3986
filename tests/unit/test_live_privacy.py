"""The gateway's hub over read models that hold personal texts sealed: frames opened once per
audience for its centre, an erasure shown to open views without a notice, another centre's
viewer never given the text, and an erased person's sockets cut off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
import pytest_asyncio

from services.live_gateway import hub as hub_module
from services.live_gateway import protocol
from services.live_gateway.hub import Connection, Frame, Hub, ResyncStale, Settings, people_in
from shared import events
from shared.eventstore import EventStoreSettings
from shared.privacy import ERASED, UNREADABLE, FieldCipher, KeyStore, Revealer, open_key_store
from shared.privacy.erasure import ErasureCheck
from shared.privacy.fields import seal_event
from shared.privacy.settings import PrivacySettings
from shared.readmodels.deltas import notice_for
from shared.readmodels.documents import PERSON
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.views import apply_merge_patch
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, DEMO_PEOPLE, EMPTY_CENTRE, demo_person
from tests.readside import demo_events, read_store
from tests.unit.test_live_hub import FakeNats, live_session, nats_of, person

EVENTS = demo_events()
HELP_REQUESTS = 2
"""The demo history ends with two help requests in the live session."""
CHECK_SECONDS = 5.0
"""How long the erasure check trusts a "not erased" it read."""


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    """The key store in the event store's database, with the tests' master key."""
    settings = load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "ev.sqlite")})
    store = open_key_store("live_gateway", settings, load(PrivacySettings), dev_mode=False)
    yield store
    store.close()


@pytest.fixture
def sealed(keys: KeyStore) -> list[tuple[events.Event, int]]:
    """The demo history with its personal texts sealed, as the command service records it."""
    cipher = FieldCipher(keys)
    return [(seal_event(event, cipher), number) for event, number in EVENTS]


@pytest.fixture
def store(tmp_path: Path, sealed: list[tuple[events.Event, int]]) -> ReadStore:
    """The sealed demo centre without its last two help requests (the tests raise them)."""
    store = read_store(tmp_path)
    apply_all(store, sealed[:-HELP_REQUESTS])
    return store


class Ticks:
    """The erasure check's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest_asyncio.fixture
async def hub(
    store: ReadStore, keys: KeyStore, ticks: Ticks, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Hub]:
    now = datetime.now(UTC)
    monkeypatch.setattr(hub_module, "utcnow", lambda: now)  # views change with nothing else
    erasures = ErasureCheck(keys, seconds=CHECK_SECONDS, clock=ticks)
    settings = Settings(queue=8, resync_seconds=3600, max_topics=4)
    hub = Hub(store, settings, Revealer(keys), erasures)
    await hub.start(FakeNats())
    yield hub
    await hub.stop()


async def received(hub: Hub, connection: Connection) -> list[Frame]:
    """What the client receives, each queued item as its writer sends it."""
    frames = []
    while not connection.outbox.empty():
        item = connection.outbox.get_nowait()
        assert not isinstance(item, ResyncStale)
        frames.append(await hub.outgoing(connection, item))
    return frames


def students_of(frame: Frame) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(frame.text)["data"]
    return {row["studentId"]: row for row in data["students"]}


def name_of(person_id: str) -> str:
    return next(p.name for p in DEMO_PEOPLE if str(p.id) == person_id)


def raisers() -> list[UUID]:
    return [e.student_id for e, _ in EVENTS[-HELP_REQUESTS:] if hasattr(e, "student_id")]


async def test_an_audience_shares_one_frame_opened_once_while_the_store_stays_sealed(
    hub: Hub, sealed: list[tuple[events.Event, int]]
) -> None:
    topic = live_session()
    supervisors = [
        hub.open(person("david")),
        hub.open(Actor(user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=DEMO_CENTRE)),
    ]
    for connection in supervisors:
        await hub.subscribe(connection, topic)
        (snapshot,) = await received(hub, connection)
        assert "pd1." not in snapshot.text
        for student, row in students_of(snapshot).items():
            assert row["name"] == name_of(student)
    first = raisers()[0]
    stored = hub.store.get(PERSON, str(first))
    assert stored is not None and stored.doc.name.startswith("pd1."), "the store keeps it sealed"

    for change in apply_all(hub.store, sealed[-HELP_REQUESTS:]):
        await nats_of(hub).ring(*notice_for(change))
    deltas = [connection.outbox.get_nowait() for connection in supervisors]
    assert all(connection.outbox.empty() for connection in supervisors)
    assert isinstance(deltas[0], Frame) and deltas[0] is deltas[1], "opened once for both"
    assert "pd1." not in deltas[0].text
    messages = [e.message for e, _ in EVENTS[-HELP_REQUESTS:] if hasattr(e, "message")]
    assert messages and all(message in deltas[0].text for message in messages)


async def test_an_erasure_reaches_open_views_as_one_snapshot_per_audience(
    hub: Hub, keys: KeyStore
) -> None:
    """No notice, no new version: the periodic check sees the person erased and sends each
    audience a snapshot, once."""
    topic = live_session()
    watching = {"john": hub.open(person("john")), "david": hub.open(person("david"))}
    before = {}
    for who, connection in watching.items():
        await hub.subscribe(connection, topic)
        (snapshot,) = await received(hub, connection)
        before[who] = students_of(snapshot)
    gone = str(next(iter(before["john"])))
    kept = {sid: row["name"] for sid, row in before["john"].items() if sid != gone}
    assert before["john"][gone]["name"] not in (ERASED, UNREADABLE)

    keys.destroy(DEMO_CENTRE, UUID(gone), erased_by=demo_person("sarah").id, reason="asked to")
    await hub.resync_all()
    for who, connection in watching.items():
        (frame,) = await received(hub, connection)
        assert frame.type == "snapshot"
        after = students_of(frame)
        assert after[gone]["name"] == ERASED
        assert {sid: row["name"] for sid, row in after.items() if sid != gone} == kept
        assert set(after) == set(before[who]), "every student still counted"
        assert after[gone]["attendance"] == before[who][gone]["attendance"]

    await hub.resync_all()
    assert all(c.outbox.empty() for c in watching.values()), "the erasure is sent once"


async def test_another_centres_viewer_never_gets_this_centres_texts(hub: Hub) -> None:
    topic = live_session()
    john = hub.open(person("john"))
    await hub.subscribe(john, topic)
    item = john.outbox.get_nowait()
    assert not isinstance(item, (Frame, ResyncStale))
    sealed_text = hub_module.wire(item).text
    assert people_in(sealed_text.encode()), "the view as read holds sealed texts"

    stranger = hub.open(Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id=EMPTY_CENTRE))
    view = msgspec.json.decode(sealed_text)["data"]
    refused = protocol.Snapshot(topic=topic, version=1, data=view)
    frame = await hub.outgoing(stranger, refused)
    assert "pd1." not in frame.text and UNREADABLE in frame.text
    opened = (await hub.outgoing(john, item)).text
    for row in students_of(frame).values():
        assert row["name"] == UNREADABLE and row["name"] not in opened

    await hub.subscribe(stranger, topic)  # and a subscription is refused outright
    (answer,) = await received(hub, stranger)
    assert answer.type == "error" and "pd1." not in answer.text


async def test_the_sockets_of_an_erased_person_are_cut_off_and_no_one_elses(
    hub: Hub, keys: KeyStore, ticks: Ticks
) -> None:
    """As another process would: the erasure is seen once what was known is older than the
    key cache's seconds."""
    student = raisers()[0]
    theirs = [
        hub.open(Actor(user_id=student, role=Role.STUDENT, centre_id=DEMO_CENTRE)) for _ in range(2)
    ]
    john = hub.open(person("john"))
    assert await hub.cut_off_erased() == 0

    keys.destroy(DEMO_CENTRE, student, erased_by=demo_person("sarah").id, reason="asked to")
    assert await hub.cut_off_erased() == 0, "not erased, as known less than the seconds ago"
    ticks.now += CHECK_SECONDS
    assert await hub.erased(theirs[0].actor) and not await hub.erased(john.actor)
    assert await hub.cut_off_erased() == 2
    assert all(connection.cut_off.is_set() for connection in theirs)
    assert "erased" in theirs[0].cut_off_reason
    assert not john.cut_off.is_set()


def test_the_people_named_by_sealed_texts_are_found_in_encoded_json(
    keys: KeyStore, sealed: list[tuple[events.Event, int]]
) -> None:
    registered = [e for e, _ in sealed if isinstance(e, events.PersonRegistered)]
    data = msgspec.json.encode({"people": [{"name": e.name} for e in registered[:3]]})
    assert people_in(data) == {e.aggregate_id for e in registered[:3]}
    assert people_in(b'{"name": "pd1. not a sealed text"}') == set()
    patched = apply_merge_patch({"a": 1}, {"b": registered[0].name})
    assert people_in(msgspec.json.encode(patched)) == {registered[0].aggregate_id}
