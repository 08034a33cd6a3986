"""The scheduler's time. A timer is about a moment of the centre's day (a session's start, a
due time); the clock says what time it is now, and at which moment of the wall clock the
server should fire a timer due at a moment. The wall clock maps each moment to itself; a
faster clock (demos, tests) runs ``rate`` times faster from an ``epoch``, so hours of a
centre's day pass in seconds without anything waiting on the wall clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.scheduler.settings import ClockSettings


class Clock(Protocol):
    def now(self) -> datetime:
        """What time it is for the centres."""
        ...

    def wall_time(self, moment: datetime) -> datetime:
        """When, on the wall clock, a timer due at ``moment`` fires."""
        ...


@dataclass(frozen=True)
class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall_time(self, moment: datetime) -> datetime:
        return moment


@dataclass(frozen=True)
class FastClock:
    """Time that runs ``rate`` times faster than the wall clock from ``epoch`` on."""

    rate: float
    epoch: datetime

    def now(self) -> datetime:
        return self.epoch + (datetime.now(UTC) - self.epoch) * self.rate

    def wall_time(self, moment: datetime) -> datetime:
        return self.epoch + (moment - self.epoch) / self.rate


def clock_from(settings: ClockSettings) -> Clock:
    if settings.rate == 1:
        return WallClock()
    return FastClock(settings.rate, settings.epoch or datetime.now(UTC))
