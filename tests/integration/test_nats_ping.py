"""The readiness ping of every service that follows NATS (shared.http.operations.NatsPing)
answers only for a client that still reads its connection: nats-py's flush returns at once,
without a round trip, once its read loop has ended, so a client that hears nothing any more
must not be reported ready, nor one whose server is frozen."""

from __future__ import annotations

import asyncio

import nats
import pytest

from shared.http.operations import NatsPing
from tests.integration.restarts import frozen
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration


async def test_a_client_that_stopped_reading_is_not_answered(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        ping = NatsPing(nc)
        assert await ping.answers(5)
        reading = nc._reading_task
        assert reading is not None
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        assert nc.is_connected  # it looks connected, and hears nothing
        assert not await ping.answers(0.5)
    finally:
        await nc.close()


async def test_a_frozen_server_is_not_answered_and_a_thawed_one_is(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        ping = NatsPing(nc)
        assert await ping.answers(5)
        with frozen(nats_server):
            assert not await ping.answers(0.5)
        answered = False
        for _ in range(100):
            if answered := await ping.answers(0.2):
                break
        assert answered
    finally:
        await nc.close()
