"""A pull fetch that finds nothing in time raises one kind of timeout, whichever of nats-py's
paths ran out of time, so FastStream's pull loop (the scheduler's consumers) and the notifier
take it as "nothing new" rather than as a failure (shared.messaging.fetch_timeouts)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.notifier.service import NotifierService
from services.notifier.settings import DeliverySettings
from shared.messaging import fetch_timeouts
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load

pytestmark = pytest.mark.integration

FETCHES = 1_000


async def test_every_timeout_of_a_pull_fetch_is_nats_own(nc: Client) -> None:
    """Deadlines of half a millisecond to 10 ms make some fetches run out between the no-wait
    probe and the lingering request, the path where nats-py raises asyncio's TimeoutError."""
    fetch_timeouts.install()
    js = nc.jetstream()
    await js.add_stream(name="EMPTY", subjects=["empty.>"])
    subscription = await js.pull_subscribe("empty.>", durable="idle", stream="EMPTY")
    raised: collections.Counter[str] = collections.Counter()
    for attempt in range(FETCHES):
        try:
            assert await subscription.fetch(10, timeout=0.0005 * (1 + attempt % 20)) == []
        except Exception as error:
            raised[f"{type(error).__module__}.{type(error).__qualname__}"] += 1
    assert raised, "no fetch ran out of time"
    assert set(raised) == {"nats.errors.TimeoutError"}, raised


class _OutOfTimeBetweenRequests:
    async def fetch(self, batch: int, timeout: float) -> list[object]:
        raise TimeoutError


async def test_the_notifier_takes_a_fetch_that_ran_out_of_time_as_nothing_new(
    nc: Client, tmp_path: Path
) -> None:
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite")})
    )
    service = NotifierService(store, nc, load(DeliverySettings, {}))
    try:
        fetched = await service._fetching(_OutOfTimeBetweenRequests(), "events")  # type: ignore[arg-type]
        assert fetched == []
        assert service._outage.current is None, "a quiet stream is not an outage"
    finally:
        store.close()
