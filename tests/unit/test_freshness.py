"""When the query API calls its read models stale: a frozen projection or a lag that lasts,
never a busy cluster that keeps up (a clock the test moves, no waiting)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.query.freshness import Freshness
from services.query.settings import FreshnessSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def freshness(clock: Clock, max_lag: int = 100, grace: float = 10) -> Freshness:
    return Freshness(FreshnessSettings(max_lag_events=max_lag, grace_seconds=grace), clock=clock)


def test_a_busy_cluster_that_keeps_moving_is_fresh_however_far_behind_for_a_moment(
    clock: Clock,
) -> None:
    check = freshness(clock)
    watermark, head = 0, 0
    for _ in range(60):  # a minute of bursts: up to 300 behind, always catching up within 5 s
        head += 300
        assert check.observe(watermark, head) is None
        clock.now += 5
        watermark = head
        assert check.observe(watermark, head + 20) is None
        clock.now += 1


def test_projections_frozen_a_few_events_behind_are_stale_after_the_grace(clock: Clock) -> None:
    check = freshness(clock)
    assert check.observe(500, 531) is None
    clock.now += 9
    assert check.observe(500, 531) is None
    clock.now += 1
    reason = check.observe(500, 531)
    assert reason is not None and "not moved" in reason and "31 events" in reason
    assert check.observe(531, 531) is None  # caught up: fresh at once


def test_an_idle_cluster_is_fresh_for_ever(clock: Clock) -> None:
    check = freshness(clock)
    for _ in range(10):
        assert check.observe(42, 42) is None
        clock.now += 60


def test_a_lag_past_the_limit_for_the_whole_grace_is_stale_and_stays_so_until_half_of_it(
    clock: Clock,
) -> None:
    check = freshness(clock, max_lag=100)
    watermark = 0
    for _ in range(10):  # moving, but 150 behind for 10 s
        assert check.observe(watermark, watermark + 150) is None
        watermark += 10
        clock.now += 1
    reason = check.observe(watermark, watermark + 150)
    assert reason is not None and "150 events behind" in reason
    clock.now += 1
    assert check.observe(watermark + 80, watermark + 150) is not None  # 70: under the limit only
    clock.now += 1
    assert check.observe(watermark + 110, watermark + 150) is None  # 40: under half of it


def test_a_lag_that_dips_below_the_limit_starts_the_grace_again(clock: Clock) -> None:
    check = freshness(clock, max_lag=100)
    for step in range(30):
        behind = 150 if step % 5 else 20
        assert check.observe(step * 50, step * 50 + behind) is None
        clock.now += 2.5


def test_the_query_and_gateway_processes_do_not_load_the_projection_service() -> None:
    """Its module registers ``tutorpulse_projection_watermark``, which the query process would
    otherwise export as a misleading 0."""
    for module in ("services.query.app", "services.live_gateway.app"):
        loaded = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys, {module}; print('services.projections.service' in sys.modules)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert loaded == "False", module
