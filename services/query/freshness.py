"""How fresh the read models are, for the query API: read-your-writes waits and readiness.

The query API's ``/ready`` compares the read-model watermark with the event store's head (the
highest notification id committed), read through one small read-only connection
(``shared.eventstore.StoredLog``). The head comes from the event store itself rather than from
a number the relay or the projections record, because those are exactly the processes whose
failure makes the read models stale: a head they stopped updating would hide it. Reading one
indexed ``max()`` needs nothing from the other services and adds no write anywhere.

A busy cluster is behind by some events all the time; that is not a fault. The read models
count as stale (``/ready`` 503) only when, for ``TUTORPULSE_QUERY_LAG_GRACE_SECONDS`` on end,
they are more than ``TUTORPULSE_QUERY_MAX_LAG_EVENTS`` behind, or have not moved at all while
behind; once stale they are fresh again below half that lag, so the probe does not flap
around the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio.to_thread
from prometheus_client import Gauge

from services.query.settings import FreshnessSettings
from shared.readmodels.store import ReadStore

WATERMARK = Gauge(
    "tutorpulse_query_watermark", "The read models' watermark as the query API last read it"
)
LAG = Gauge(
    "tutorpulse_query_lag_events",
    "The event store's head minus the read models' watermark, at the last /ready",
)


async def wait_for_watermark(store: ReadStore, position: int, timeout: float) -> bool:
    """For queries given a read-your-writes position: wait (bounded) until it is reflected."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if await anyio.to_thread.run_sync(store.watermark) >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


class Freshness:
    """Turns successive (watermark, head) readings into "stale, because…" or fresh."""

    def __init__(
        self, settings: FreshnessSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = FreshnessSettings() if settings is None else settings
        self._clock = clock
        self._watermark: int | None = None
        self._moved_at = clock()
        self._behind_since: float | None = None
        self._stale = False

    def observe(self, watermark: int, head: int) -> str | None:
        """Why the read models are too stale to serve now, or None."""
        now = self._clock()
        lag = max(0, head - watermark)
        WATERMARK.set(watermark)
        LAG.set(lag)
        if watermark != self._watermark or lag == 0:
            self._watermark, self._moved_at = watermark, now
        limit = self.settings.max_lag_events // 2 if self._stale else self.settings.max_lag_events
        if lag <= limit:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = now
        grace = self.settings.grace_seconds
        reason = None
        if self._behind_since is not None and now - self._behind_since >= grace:
            reason = (
                f"the read models are {lag} events behind the event store (more than "
                f"{limit} for {now - self._behind_since:.0f} s)"
            )
        elif lag > 0 and now - self._moved_at >= grace:
            reason = (
                f"the read models have not moved for {now - self._moved_at:.0f} s while "
                f"{lag} events behind the event store"
            )
        self._stale = reason is not None
        return reason
