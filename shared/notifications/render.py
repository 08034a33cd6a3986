"""Times as people read them: in their centre's time zone, daylight saving included."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """The centre's zone; UTC for a name the time-zone database does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(value: datetime, time_zone: str) -> str:
    """``value`` as a person in ``time_zone`` reads it: ``Sun 6 Apr 2025, 14:30 AEST``."""
    local = value.astimezone(zone(time_zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"
