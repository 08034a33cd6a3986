"""Stream set-up creates what is missing with the settings' limits, and never undoes what an
operator changed (replicas, age, size, counts, duplicate window)."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.js import api

from shared.events import STREAM_NAME
from shared.messaging import StreamSettings, ensure_streams, wait_for_streams
from shared.messaging.auth import DLQ_STREAM
from shared.settings import load
from tests.integration.conftest import NatsAs

pytestmark = pytest.mark.integration

DAY = 86400


async def test_streams_are_created_with_the_limits_of_the_settings(
    nc: Client, nats_as: NatsAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTORPULSE_NATS_EVENTS_MAX_AGE", "2d")
    monkeypatch.setenv("TUTORPULSE_NATS_EVENTS_MAX_BYTES", "64M")
    monkeypatch.setenv("TUTORPULSE_NATS_DLQ_MAX_AGE", "3600")
    settings = load(StreamSettings)  # as the relay reads them at start
    await ensure_streams((await nats_as("relay")).jetstream(), settings)  # only the relay can
    js = nc.jetstream()
    events = (await js.stream_info(STREAM_NAME)).config
    assert (events.max_age, events.max_bytes, events.num_replicas) == (2 * DAY, 64 * 2**20, 1)
    assert events.duplicate_window == 120 and events.subjects == ["tp.evt.>"]
    dead = (await js.stream_info(DLQ_STREAM)).config
    assert (dead.max_age, dead.max_bytes) == (3600, -1)


async def test_an_operators_limits_survive_every_restart_of_every_service(
    nc: Client, nats_as: NatsAs
) -> None:
    relay = (await nats_as("relay")).jetstream()
    await ensure_streams(relay)
    js = nc.jetstream()  # the operator
    events = (await js.stream_info(STREAM_NAME)).config
    operator = events.evolve(
        max_age=7 * DAY,
        max_bytes=2**30,
        max_msgs=5_000_000,
        duplicate_window=600,
        description="sized by the operator",
    )
    await js.update_stream(operator)
    await ensure_streams(relay)  # a relay starts again
    kept = (await js.stream_info(STREAM_NAME)).config
    assert (
        kept.max_age,
        kept.max_bytes,
        kept.max_msgs,
        kept.duplicate_window,
        kept.description,
    ) == (7 * DAY, 2**30, 5_000_000, 600, "sized by the operator")


async def test_a_stream_deleted_by_mistake_comes_back(nc: Client) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    await js.delete_stream(DLQ_STREAM)
    await ensure_streams(js)
    assert isinstance((await js.stream_info(DLQ_STREAM)).config, api.StreamConfig)


async def test_projections_wait_for_the_relay_to_create_the_streams(nats_as: NatsAs) -> None:
    """The projections' user may only read the streams' info: at start it waits until the
    relay has created them, and stops waiting when told to."""
    projections = (await nats_as("projections")).jetstream()
    stopping = asyncio.Event()
    waiting = asyncio.create_task(wait_for_streams(projections, stopping, poll_seconds=0.05))
    await asyncio.sleep(0.3)  # a few rounds of looking: still nothing to find
    assert not waiting.done()
    await ensure_streams((await nats_as("relay")).jetstream())
    assert await asyncio.wait_for(waiting, 10) is True

    stopping.set()  # told to stop while streams are missing: it gives up at once
    assert (
        await asyncio.wait_for(wait_for_streams(projections, stopping, names=("TP_NOWHERE",)), 1)
        is False
    )
