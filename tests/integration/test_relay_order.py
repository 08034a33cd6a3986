"""The relay never puts an event after its successor in TP_EVENTS, against a real nats-server.

JetStream refuses one publish of a pipelined batch while it stores the ones after it (JetStream
not yet ready after a restart did this once in the chaos round: "TP_EVENTS 2826 before 2825").
Here the refusal is made deterministic: the stream captures one centre's subjects only, so the
server answers the other centre's events with "no responders" while it stores the events around
them, until the test gives the stream its subjects back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from services.command.application import TutoringCentres
from services.relay.lease import FileLease
from services.relay.publishing import Publisher, Refused
from services.relay.relay import TRACKING_NAME, Relay, message_id
from services.relay.settings import RelaySettings
from shared.events import STREAM_NAME, decode_header, subject_for
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.settings import load
from tests.builders import plan, register_centre
from tests.integration.restarts import restart_nats
from tests.integration.streams import read_stream
from tests.support.servers import NatsServer, suspend

pytestmark = pytest.mark.integration


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def failed_batches() -> float:
    return REGISTRY.get_sample_value("tutorpulse_relay_failed_batches_total") or 0.0


def store_order(centres: TutoringCentres) -> list[int]:
    return [n.id for n in centres.recorder.select_notifications(1, 1_000_000)]


async def streamed_order(js: JetStreamContext) -> list[int]:
    return [s.notification_id for s in await read_stream(js)]


async def set_subjects(js: JetStreamContext, subjects: list[str]) -> None:
    config = (await js.stream_info(STREAM_NAME)).config
    await js.update_stream(config.evolve(subjects=subjects))


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    store = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield store
    store.close()


async def test_a_publish_refused_mid_batch_keeps_every_later_event_out_until_it_goes_through(
    centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    alpha = register_centre(centres, "alpha")
    refused_from = centres.position + 1
    register_centre(centres, "beta")  # refused while the stream captures alpha's subjects only
    refused_until = centres.position
    for _ in range(20):
        centres.handle(alpha["tutor"], plan())
    expected = store_order(centres)
    js = nc.jetstream()
    await ensure_streams(js)
    await set_subjects(js, ["tp.evt.alpha.>"])
    # One batch for everything: beta's events and alpha's later ones are in flight together.
    settings = RelaySettings(batch_size=1000, ack_timeout=5.0, handover_seconds=0)
    relay = Relay(centres, centres.tracking(), js, FileLease(tmp_path / "relay.lock"), settings)
    failures = failed_batches()
    task = asyncio.create_task(relay.run())
    try:

        async def refused_twice() -> bool:
            return failed_batches() >= failures + 2

        await wait_until(refused_twice)
        # Nothing after the refused event is in the stream: only what came before it.
        assert await streamed_order(js) == list(range(1, refused_from))
        assert relay.position == refused_from - 1
        assert relay.status().leader

        await set_subjects(js, ["tp.evt.>"])

        async def relayed_everything() -> bool:
            return relay.position >= expected[-1]

        await wait_until(relayed_everything)
    finally:
        relay.stop()
        await task
    assert refused_until > refused_from
    assert await streamed_order(js) == expected


async def test_the_first_event_after_a_nats_restart_goes_through_when_the_stream_forgot_its_ids(
    centres: TutoringCentres, nats_server: NatsServer, tmp_path: Path
) -> None:
    """The first publish after a restart expects the stream's last sequence, which the server
    always knows, not its last message id, which a server may rebuild only from the messages
    inside the duplicate window: here every message is older than the window."""
    import nats

    alpha = register_centre(centres, "alpha")
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        config = (await js.stream_info(STREAM_NAME)).config
        await js.update_stream(config.evolve(duplicate_window=0.2))
        relay = Relay(
            centres,
            centres.tracking(),
            js,
            FileLease(tmp_path / "relay.lock"),
            RelaySettings(ack_timeout=1.0, handover_seconds=0),
            nc=nc,
        )
        task = asyncio.create_task(relay.run())
        try:
            first = store_order(centres)

            async def relayed(ids: list[int]) -> bool:
                return relay.position >= ids[-1]

            await wait_until(lambda: relayed(first))
            last = await js.get_msg(STREAM_NAME, (await js.stream_info(STREAM_NAME)).state.last_seq)
            assert last.time is not None

            async def older_than_the_window() -> bool:
                return time.time() - last.time.timestamp() > 0.5  # type: ignore[union-attr]

            await wait_until(older_than_the_window)
            restart_nats(nats_server)

            async def connected() -> bool:
                return nc.is_connected

            await wait_until(connected)
            centres.handle(alpha["tutor"], plan())
            centres.handle(alpha["tutor"], plan())
            everything = store_order(centres)
            await wait_until(lambda: relayed(everything))
        finally:
            relay.stop()
            await task
        assert await streamed_order(js) == everything
    finally:
        await nc.close()


async def test_a_stream_left_out_of_order_by_an_older_relay_is_continued_in_order(
    centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    """An older relay stored 12 before 11 and recorded its position at 10 (the acks were lost):
    the relay moves past what the stream holds, and the events it publishes next, the first of
    them a repeat JetStream acks as a duplicate, follow in order."""
    alpha = register_centre(centres, "alpha")
    while centres.position < 16:
        centres.handle(alpha["tutor"], plan())
    notifications = {n.id: n for n in centres.recorder.select_notifications(1, 1_000)}
    js = nc.jetstream()
    await ensure_streams(js)
    left_by_an_older_relay = [*range(1, 11), 12, 11]
    for notification_id in left_by_an_older_relay:
        notification = notifications[notification_id]
        await js.publish(
            subject_for(decode_header(notification.state)),
            notification.state,
            stream=STREAM_NAME,
            headers={
                "Nats-Msg-Id": message_id(notification_id),
                "Tp-Notification-Id": str(notification_id),
                "Tp-Event-Type": notification.topic,
            },
        )
    centres.tracking().insert_tracking(Tracking(TRACKING_NAME, 10))
    relay = Relay(
        centres,
        centres.tracking(),
        js,
        FileLease(tmp_path / "relay.lock"),
        RelaySettings(ack_timeout=1.0, handover_seconds=0),
    )
    task = asyncio.create_task(relay.run())
    head = centres.position
    try:

        async def relayed_everything() -> bool:
            return relay.position >= head

        await wait_until(relayed_everything, timeout=15)
    finally:
        relay.stop()
        await task
    assert await streamed_order(js) == [*left_by_an_older_relay, *range(13, head + 1)]


async def test_two_relays_publishing_at_once_store_every_event_once_in_order(
    centres: TutoringCentres, nc: Client, tmp_path: Path
) -> None:
    """What a leader change can leave for a moment (the old leader's publishes still in flight
    while the new one publishes), for as long as it takes both to relay a backlog: each event
    is stored once, right after its predecessor, whichever relay's copy gets there first."""
    alpha = register_centre(centres, "alpha")
    weeks = 0
    while centres.position < 1500:  # a week each: the tutor's timetable week stays small
        weeks += 1
        centres.handle(alpha["tutor"], plan(hours_from_now=168 * weeks))
    head = centres.position
    js = nc.jetstream()
    await ensure_streams(js)
    settings = RelaySettings(batch_size=100, ack_timeout=2.0, handover_seconds=0)
    relays = [  # two lease files: both lead
        Relay(centres, centres.tracking(), js, FileLease(tmp_path / f"{n}.lock"), settings)
        for n in (1, 2)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:

        async def both_relayed_everything() -> bool:
            return all(relay.position >= head for relay in relays)

        await wait_until(both_relayed_everything, timeout=60)
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks)
    assert await streamed_order(js) == store_order(centres)


async def test_a_refusal_reaches_its_publish_at_once(nc: Client) -> None:
    """nats-py's publish_async leaves a refused publish's future pending (nats.py#985); the
    relay's publisher fails it with the server's reason, so a refused batch is not mistaken
    for a slow one."""
    js = nc.jetstream()
    await ensure_streams(js)
    publisher = Publisher(nc)
    try:
        first = await publisher.publish(
            "tp.evt.alpha.centre.x.CentreRegistered", b"{}", {"Nats-Msg-Id": "probe:1"}
        )
        assert (await asyncio.wait_for(first, 5)).seq == 1
        wrong = await publisher.publish(
            "tp.evt.alpha.centre.x.CentreRegistered",
            b"{}",
            {"Nats-Msg-Id": "probe:3", "Nats-Expected-Last-Msg-Id": "probe:2"},
        )
        with pytest.raises(Refused) as refused:
            await asyncio.wait_for(wrong, 5)
        assert refused.value.err_code == 10070
        assert "probe:1" in str(refused.value)
        nowhere = await publisher.publish("tp.nowhere", b"{}", {"Nats-Msg-Id": "probe:4"})
        with pytest.raises(Refused, match="no responders"):
            await asyncio.wait_for(nowhere, 5)
        again = await publisher.publish(
            "tp.evt.alpha.centre.x.CentreRegistered", b"{}", {"Nats-Msg-Id": "probe:1"}
        )
        assert (await asyncio.wait_for(again, 5)).duplicate
        assert publisher.waiting == 0
    finally:
        await publisher.close()


async def test_a_batch_in_flight_when_nats_dies_is_published_again_without_waiting_for_its_acks(
    centres: TutoringCentres, nats_server: NatsServer, tmp_path: Path
) -> None:
    """Acks of a connection that dropped never come: the relay gives the batch up when the
    connection drops, not at its ack timeout (here far longer than the test waits)."""
    import nats

    alpha = register_centre(centres, "alpha")
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        relay = Relay(
            centres,
            centres.tracking(),
            js,
            FileLease(tmp_path / "relay.lock"),
            RelaySettings(ack_timeout=60.0, handover_seconds=0),
            nc=nc,
        )
        task = asyncio.create_task(relay.run())
        try:

            async def relayed_everything() -> bool:
                return relay.position >= centres.position

            await wait_until(relayed_everything)
            suspend(nats_server.pid)  # publishes go out, no ack comes back
            centres.handle(alpha["tutor"], plan())

            async def in_flight() -> bool:
                return relay.acks_outstanding > 0

            await wait_until(in_flight)
            restart_nats(nats_server)
            centres.handle(alpha["tutor"], plan())
            await wait_until(relayed_everything, timeout=30)
        finally:
            relay.stop()
            await task
        assert await streamed_order(js) == store_order(centres)
    finally:
        await nc.close()
