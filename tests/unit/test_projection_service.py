"""The projection service's answers to one batch, message by message: acks, back-off,
dead letters (with the headers that matter) and outages, with real JetStream messages whose
acknowledgements go to a recording client instead of a server.

Failures and waits are counted per message by the replica; JetStream's delivery count (which
also counts every delivery given back during an outage) is deliberately high in some of these
messages, to show that it does not count."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
import structlog
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from services.projections import service as projection_module
from services.projections.service import Settings
from shared import events
from shared.readmodels import projector
from shared.readmodels.deltas import ANNOUNCED_KINDS
from shared.readmodels.documents import STUDENT_ALERTS, STUDENT_SESSIONS
from shared.readmodels.store import ReadStore, Transaction
from shared.tenancy import Actor
from shared.tenancy.roles import Role
from tests.readside import read_store
from tests.support.projection_replica import (
    Item,
    Recorder,
    UnreachableStore,
    delivered,
    fail_enrolments,
    nak_delay,
    projection_service,
    version,
)


async def test_a_failing_event_is_retried_with_back_off_then_dead_lettered_its_aggregate_goes_on(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_before_enrolment
    fail_enrolments(monkeypatch)
    client = Recorder()
    service = projection_service(store, client)
    enrolment, after = session_events[1], session_events[2]

    delays = []
    for deliveries in range(1, Settings().poison_after):
        message = delivered(client, enrolment, deliveries=deliveries)
        await service.handle([message])
        [answer] = client.decisions(message)
        delays.append(nak_delay(answer))
    assert delays == [0.5, 1, 2, 4] and client.dead == []

    last = delivered(client, enrolment, deliveries=Settings().poison_after)
    await service.handle([last])
    assert client.decisions(last) == [b"+TERM"]
    [(subject, data, headers)] = client.dead
    assert subject == f"tp.dlq.projections.{last.subject}" and data == last.data
    assert headers["Nats-Msg-Id"] == f"dlq:projections:tutorpulse:{enrolment[1]}"
    assert headers["Tp-Dlq-Subject"] == last.subject
    assert headers["Tp-Dlq-Msg-Id"] == f"tutorpulse:{enrolment[1]}"
    assert headers["Tp-Notification-Id"] == str(enrolment[1])
    assert headers["Tp-Event-Type"] == "StudentEnrolled"
    assert headers["Tp-Dlq-Stream-Seq"] == "7" and headers["Tp-Dlq-Deliveries"] == "5"
    assert headers["Tp-Dlq-Reason"] == "ValueError: year 0202 cannot be stored"
    assert headers["Tp-Dlq-Consumer"] == "projections" and headers["Tp-Dlq-At"].endswith("Z")
    assert "Nats-Expected-Stream" not in headers  # JetStream refuses those on another stream
    assert version(store, enrolment[0].aggregate_id) == 2

    monkeypatch.undo()
    following = delivered(client, after, deliveries=1, sequence=8)
    await service.handle([following])
    assert client.decisions(following) == [b"+ACK"]
    assert version(store, after[0].aggregate_id) == 3


async def test_a_dead_letter_that_cannot_be_published_is_given_back_not_terminated(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_before_enrolment
    fail_enrolments(monkeypatch)
    client = Recorder()
    client.refuse_dead_letters = True
    service = projection_service(store, client)

    for deliveries in range(1, Settings().poison_after + 1):
        message = delivered(client, session_events[1], deliveries=deliveries)
        await service.handle([message])

    answers = client.answers(message)
    assert b"+TERM" not in answers
    assert nak_delay(answers[-1]) == 8  # 0.5 s doubling per failure
    assert version(store, session_events[1][0].aggregate_id) == 1  # not skipped either

    client.refuse_dead_letters = False  # NATS is back: the next failure dead-letters it
    again = delivered(client, session_events[1], deliveries=Settings().poison_after + 1)
    await service.handle([again])
    assert client.answers(again)[-1] == b"+TERM" and len(client.dead) == 1
    assert version(store, session_events[1][0].aggregate_id) == 2


def _first_seat_event(demo_history: list[Item], session_events: list[Item]) -> Item:
    """The first event of a seat of the session of ``session_events``: it needs the session."""
    session_id = session_events[0][0].aggregate_id
    return next(
        item
        for item in demo_history
        if getattr(item[0], "session_id", None) == session_id
        and str(item[0].aggregate_id) != str(session_id)
        and item[0].aggregate_version == 1
    )


async def test_an_event_that_waits_too_long_for_an_earlier_one_is_dead_lettered_too(
    tmp_path: Path, demo_history: list[Item], session_events: list[Item]
) -> None:
    """Its session was never scheduled in the read models (say it was dead-lettered): the seat
    event waits, is offered again soon, and at last goes to the dead letters too."""
    store = read_store(tmp_path)
    seat_event = _first_seat_event(demo_history, session_events)
    client = Recorder()
    settings = Settings()
    service = projection_service(store, client, settings)

    delays = []
    for waits in range(1, settings.wait_deliveries):
        early = delivered(client, seat_event, deliveries=1000 + waits)  # long outages before
        await service.handle([early])
        [answer] = client.answers(early)
        delays.append(nak_delay(answer))
    assert client.dead == []
    # Offered again soon (another replica is usually applying its predecessor), then less often.
    assert delays[:40] == [0.05] * 40 and delays[40:46] == [0.1, 0.2, 0.4, 0.8, 1.6, 2]
    assert set(delays[46:]) == {2}

    late = delivered(client, seat_event, deliveries=2000)
    await service.handle([late])
    assert client.answers(late)[-1] == b"+TERM"
    reason = client.dead[0][2]["Tp-Dlq-Reason"]
    assert reason.startswith(f"waited {settings.wait_deliveries} times for an earlier event: ")
    assert version(store, seat_event[0].aggregate_id) == 1  # its seat goes on without it


class _Clock:
    """The projection module's ``time`` with a monotonic clock the test moves."""

    perf_counter = staticmethod(time.perf_counter)

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_an_event_held_for_an_earlier_one_is_kept_in_hand_and_counted_as_if_given_back(
    tmp_path: Path,
    demo_history: list[Item],
    session_events: list[Item],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop holds an event waiting for an earlier one instead of giving it back: it is
    tried with every batch, kept in hand with in-progress acks, counted as often as a
    given-back message would come round (however many batches try it meanwhile), and so
    dead-lettered after as long a wait."""
    clock = _Clock()
    monkeypatch.setattr(projection_module, "time", clock)
    store = read_store(tmp_path)
    seat_event = _first_seat_event(demo_history, session_events)
    client = Recorder()
    settings = Settings(wait_deliveries=5)
    service = projection_service(store, client, settings)
    waiting = delivered(client, seat_event, deliveries=1, sequence=40)

    async def batch(*fetched: Msg) -> None:
        messages, mixed = service._with_held(list(fetched))
        finish = await service._apply_batch(messages, caught_up=True, hold=True, mixed=mixed)
        assert finish is not None
        await finish

    await batch(waiting)
    assert client.answers(waiting) == [] and held() == 1
    for n in range(10):  # tried with each batch, not counted: no sooner dead-lettered
        other = delivered(client, demo_history[0], deliveries=1, sequence=n + 1)
        await batch(other)
        assert client.answers(other) == [b"+ACK"]
    assert client.answers(waiting) == [] and held() == 1

    clock.now += settings.ack_wait / 3  # kept in hand before JetStream would hand it on
    await service._tend_held()  # and tried again, its second wait
    assert client.answers(waiting) == [Msg.Ack.Progress]

    for _ in range(settings.wait_deliveries - 3):  # due: counted, still held
        clock.now += settings.retry_delay  # offered again that soon if given back
        await service._tend_held()
        assert client.decisions(waiting) == [] and client.dead == []
    clock.now += settings.retry_delay
    await service._tend_held()  # the fifth wait: dead-lettered as a given-back one would be
    await service._finished()
    assert client.decisions(waiting) == [b"+TERM"] and held() == 0
    reason = client.dead[0][2]["Tp-Dlq-Reason"]
    assert reason.startswith("waited 5 times for an earlier event: ")


def held() -> float:
    return REGISTRY.get_sample_value("tutorpulse_projection_held_events") or 0.0


async def test_an_unreachable_store_gives_the_batch_back_and_fails_no_event(
    tmp_path: Path, demo_history: list[Item]
) -> None:
    client = Recorder()
    store = UnreachableStore(read_store(tmp_path))
    service = projection_service(store, client, Settings(outage_backoff=0.1))
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            batch = [
                delivered(client, item, deliveries=Settings().poison_after + 1, sequence=n)
                for n, item in enumerate(demo_history[:3], start=1)
            ]
            await service.handle(batch)
            assert all(client.answers(message)[-1].startswith(b"-NAK") for message in batch)
    assert client.dead == []
    said = [e for e in logs if e["event"].startswith("projections.read_store.")]
    assert [(e["event"], e["log_level"]) for e in said] == [
        ("projections.read_store.unavailable", "error")
    ]  # once, however long it lasts


async def test_deliveries_given_back_during_an_outage_do_not_count_as_failures(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-store outage gives batches back many times; after it, an event that fails once is
    tried again with the first back-off, not dead-lettered at once."""
    store = UnreachableStore(store_before_enrolment)
    store.down = False
    fail_enrolments(monkeypatch)
    client = Recorder()
    service = projection_service(store, client, Settings(outage_backoff=0.01))
    enrolment = session_events[1]

    first = delivered(client, enrolment, deliveries=1)
    await service.handle([first])
    assert nak_delay(client.answers(first)[-1]) == 0.5  # its first failure
    store.down = True
    for deliveries in range(2, 30):  # given back again and again
        message = delivered(client, enrolment, deliveries=deliveries)
        await service.handle([message])
        assert nak_delay(client.answers(message)[-1]) > 0
    store.down = False

    after = delivered(client, enrolment, deliveries=30)
    await service.handle([after])
    assert nak_delay(client.answers(after)[-1]) == 1.0 and client.dead == []  # its second failure
    assert version(store, enrolment[0].aggregate_id) == 1


async def test_an_aggregate_goes_on_when_the_event_missing_before_a_dead_letter_arrives(
    store_before_enrolment: ReadStore, session_events: list[Item]
) -> None:
    """v3 waited too long for v2 and was dead-lettered while v2 was missing; v2 then arrives and
    is applied, which passes v3 (counted as in), so v4 applies on its first delivery instead of
    waiting to be dead-lettered in turn, and so on for the aggregate's future."""
    store = store_before_enrolment
    v2, v3, v4 = session_events[1:4]
    assert [item[0].aggregate_version for item in (v2, v3, v4)] == [2, 3, 4]
    client = Recorder()
    service = projection_service(store, client, Settings(wait_deliveries=2))

    for deliveries in (1, 2):
        await service.handle([delivered(client, v3, deliveries=deliveries, sequence=3)])
    assert [headers["Tp-Notification-Id"] for _, _, headers in client.dead] == [str(v3[1])]
    assert version(store, v2[0].aggregate_id) == 1  # v2 is still missing

    arrived = delivered(client, v2, deliveries=1, sequence=2)
    await service.handle([arrived])
    assert client.answers(arrived) == [b"+ACK"]
    assert version(store, v2[0].aggregate_id) == 3

    following = delivered(client, v4, deliveries=1, sequence=4)
    await service.handle([following])
    assert client.answers(following) == [b"+ACK"]
    assert version(store, v4[0].aggregate_id) == 4
    assert len(client.dead) == 1


async def test_an_event_always_in_conflict_is_retried_then_fails_like_a_handler_error(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement that always exceeds the statement timeout is a transient conflict each time:
    it is tried again at once a bounded number of times, then backs off and is dead-lettered
    like any failing event, so it cannot freeze the watermark."""

    class StatementTimeout(Exception):
        pass

    store = store_before_enrolment
    store.transient_errors = (StatementTimeout,)
    fail_enrolments(monkeypatch, StatementTimeout("canceling statement due to statement timeout"))
    client = Recorder()
    settings = Settings(conflict_retries=3, poison_after=2)
    service = projection_service(store, client, settings)

    delays = []
    for deliveries in range(1, 5):
        message = delivered(client, session_events[1], deliveries=deliveries)
        await service.handle([message])
        [answer] = client.answers(message)
        delays.append(nak_delay(answer))
    assert delays == [0.05, 0.05, 0.05, 0.5] and client.dead == []

    last = delivered(client, session_events[1], deliveries=5)
    await service.handle([last])
    assert client.answers(last)[-1] == b"+TERM"
    [(_, _, headers)] = client.dead
    assert headers["Tp-Dlq-Reason"] == (
        "StatementTimeout: canceling statement due to statement timeout (in conflict 5 times)"
    )


async def test_counts_are_forgotten_once_a_message_is_acked_and_bounded_in_number(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_before_enrolment
    fail_enrolments(monkeypatch)
    client = Recorder()
    service = projection_service(store, client, Settings(remembered_messages=2))

    async def first_delay(item: Item, sequence: int) -> float:
        message = delivered(client, item, deliveries=1, sequence=sequence)
        await service.handle([message])
        return nak_delay(client.answers(message)[-1])

    # Three failing messages: the replica keeps counting the last two only.
    assert [await first_delay(session_events[1], n) for n in (1, 2, 3)] == [0.5, 0.5, 0.5]
    assert await first_delay(session_events[1], 3) == 1.0  # remembered: its second failure
    assert await first_delay(session_events[1], 1) == 0.5  # forgotten: counted afresh

    monkeypatch.undo()  # applied and acked: its count goes
    applied = delivered(client, session_events[1], deliveries=9, sequence=3)
    await service.handle([applied])
    assert client.answers(applied) == [b"+ACK"]
    assert len(service._tally) == 1  # only message 1's count is left


class AckFloor(Recorder):
    """A recorder whose consumer has the ack floor a test sets, and counts how often it is
    asked for it."""

    def __init__(self) -> None:
        super().__init__()
        self.floor = (0, 0)
        """(delivery sequence, stream sequence)"""
        self.asked = 0

    async def consumer_info(self, stream: str, durable: str) -> Any:
        self.asked += 1
        consumer, stream_sequence = self.floor
        floor = SimpleNamespace(consumer_seq=consumer, stream_seq=stream_sequence)
        return SimpleNamespace(ack_floor=floor, num_pending=0, num_ack_pending=0)


def delivery(client: Recorder, item: Item, stream: int, consumer: int) -> Msg:
    """``item``, the stream's message ``stream``, as the consumer's ``consumer``-th delivery."""
    message = delivered(client, item, deliveries=1)
    message.reply = f"$JS.ACK.TP_EVENTS.projections.1.{stream}.{consumer}.1700000000000000000.0"
    return message


async def test_a_lone_replica_moves_the_watermark_by_its_own_acks_never_past_another_s(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that acked a whole batch following the ack floor without a gap knows the new
    floor (the batch's last message) and needs no request to JetStream for the watermark. A
    delivery it did not get (another replica took it) makes it ask, and the watermark stays
    below what the other replica holds; while another replica is about, it asks every time."""
    monkeypatch.setattr(projection_module, "WATERMARK_EVERY", 3600.0)
    monkeypatch.setattr(projection_module, "OTHERS_FORGOTTEN_AFTER", 3600.0)
    client = AckFloor()
    service = projection_service(store_before_enrolment, client)
    # Message 13 is another replica's (some other aggregate's event): not among these.
    ours = dict(zip((10, 11, 12, 14, 15), session_events[1:6], strict=True))
    position = {stream: item[1] for stream, item in ours.items()}

    async def batch(*deliveries: tuple[int, int], floor: tuple[int, int]) -> None:
        """A batch of the stream's messages and delivery sequences given; ``floor``: where
        JetStream's ack floor is once it is acked."""
        client.floor = floor
        await service.handle(
            [delivery(client, ours[stream], stream, consumer) for stream, consumer in deliveries]
        )

    await batch((10, 1), floor=(1, 10))  # the floor is not known yet: asked
    assert (client.asked, service.watermark) == (1, position[10])
    await batch((11, 2), (12, 3), floor=(3, 12))  # right after it: not asked
    assert (client.asked, service.watermark) == (1, position[12])
    assert store_before_enrolment.watermark() == position[12]

    # Delivery 4 (message 13) went to another replica, which has not acked it yet.
    await batch((14, 5), floor=(3, 12))
    assert (client.asked, service.watermark) == (2, position[12])
    # It has now: the floor is past both, and this replica asks from now on.
    await batch((15, 6), floor=(6, 15))
    assert (client.asked, service.watermark) == (3, position[15])


class WatchedAcks(AckFloor):
    """An :class:`AckFloor` that notes the store's watermark as each ack goes out."""

    def __init__(self, store: ReadStore) -> None:
        super().__init__()
        self.store = store
        self.watermark_at_ack: dict[str, int] = {}

    async def publish(self, subject: str, payload: bytes = b"", *args: Any, **kwargs: Any) -> Any:
        if subject.startswith("$JS.ACK."):
            self.watermark_at_ack[subject] = self.store.watermark()
        return await super().publish(subject, payload, *args, **kwargs)

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 1.0) -> None:
        self.watermark_at_ack[subject] = self.store.watermark()
        await super().request(subject, payload, timeout)


async def test_a_lone_replica_records_the_watermark_with_the_batch_that_takes_it_there(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose deliveries follow those this replica knows are in the read models records
    its last event's position as the watermark in its own transaction: a query waiting for it
    sees it when the batch commits, before the batch's acks go out, and no write of the
    watermark follows. A batch that does not apply every event records none."""
    monkeypatch.setattr(projection_module, "WATERMARK_EVERY", 3600.0)
    monkeypatch.setattr(projection_module, "OTHERS_FORGOTTEN_AFTER", 3600.0)
    store = store_before_enrolment
    written: list[int] = []
    advance = store.advance_watermark

    def advance_alone(position: int) -> None:
        written.append(position)
        advance(position)

    monkeypatch.setattr(store, "advance_watermark", advance_alone)
    client = WatchedAcks(store)
    service = projection_service(store, client)
    ours = dict(zip((10, 11, 12, 13), session_events[1:5], strict=True))
    position = {stream: item[1] for stream, item in ours.items()}

    async def batch(*deliveries: tuple[int, int], floor: tuple[int, int]) -> list[Msg]:
        client.floor = floor
        messages = [
            delivery(client, ours[stream], stream, consumer) for stream, consumer in deliveries
        ]
        await service.handle(messages)
        return messages

    await batch((10, 1), floor=(1, 10))  # nothing known yet: JetStream's floor, then a write
    assert (written, store.watermark()) == ([position[10]], position[10])
    acked = await batch((11, 2), (12, 3), floor=(3, 12))
    assert (written, store.watermark(), service.watermark) == (
        [position[10]],
        position[12],
        position[12],
    )
    assert client.watermark_at_ack[acked[-1].reply] == position[12]
    assert client.asked == 1

    def failing(docs: projector.Batch, event: events.Event) -> None:
        raise ValueError("cannot be stored")

    # The session's start fails: its batch records no watermark, and it is given back.
    started: type[events.Event] = events.SessionStarted
    monkeypatch.setitem(projector._HANDLERS, started, failing)
    refused = await batch((13, 4), floor=(3, 12))
    assert nak_delay(client.decisions(refused[0])[-1]) > 0
    assert (written, store.watermark(), client.asked) == ([position[10]], position[12], 2)


async def test_a_replica_cancelled_while_it_applies_a_batch_is_cancelled_once_the_batch_is_over(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica cancelled while its thread applies a batch does not leave the batch's
    transaction running behind it (the read store may be closed next): the cancellation takes
    effect once the transaction is over."""
    store = store_before_enrolment
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    enrolled: type[events.Event] = events.StudentEnrolled
    enrol = projector._HANDLERS[enrolled]

    def slow(docs: projector.Batch, event: events.Event) -> None:
        entered.set()
        release.wait()
        enrol(docs, event)

    monkeypatch.setitem(projector._HANDLERS, enrolled, slow)
    transaction = store.transaction

    @contextmanager
    def noted(*args: Any, **kwargs: Any) -> Iterator[Transaction]:
        with transaction(*args, **kwargs) as tx:
            yield tx
        order.append("transaction over")

    monkeypatch.setattr(store, "transaction", noted)
    client = Recorder()
    service = projection_service(store, client)
    task = asyncio.create_task(service.handle([delivered(client, session_events[1], deliveries=1)]))
    while not entered.is_set():
        await asyncio.sleep(0.001)
    task.cancel()
    task.add_done_callback(lambda _: order.append("cancelled"))
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert order == ["transaction over", "cancelled"]
    assert client.acks == []  # nothing acked: the event comes back, and is recognised


async def test_a_batch_announces_the_documents_a_gateway_follows_and_no_others(
    store_before_enrolment: ReadStore, session_events: list[Item]
) -> None:
    """Enrolments change the session, its tutor's My Day and the students' overviews, which
    are announced, and the students' months and alerts, which no socket follows."""
    client = Recorder()
    service = projection_service(store_before_enrolment, client)
    enrolments = [
        delivered(client, item, deliveries=1, sequence=n)
        for n, item in enumerate(session_events[1:4], start=1)
    ]
    await service.handle(enrolments)
    announced = {subject.split(".")[3] for subject, _ in client.notices}
    assert {"session", "tutor", "student"} <= announced <= ANNOUNCED_KINDS
    student = str(session_events[1][0].student_id)  # type: ignore[attr-defined]
    assert store_before_enrolment.get(STUDENT_ALERTS, student) is not None
    assert store_before_enrolment.centre_docs(STUDENT_SESSIONS, session_events[1][0].centre_id)


def test_every_kind_a_gateway_topic_follows_is_announced() -> None:
    from services.live_gateway.hub import Topic

    tutor = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="centre-a")
    topics = ["my-day", "catch-ups", "notifications"]
    topics += [f"{prefix}:{uuid4()}" for prefix in ("session", "student", "class")]
    assert {Topic.parse(name, tutor).kind for name in topics} == ANNOUNCED_KINDS
