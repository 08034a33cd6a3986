"""Times as read models hold them: text in UTC, to the microsecond, with a four-digit year."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime) -> str:
    """UTC, to the microsecond, with a four-digit year: documents compare times as strings and
    views parse them back. (An instant that UTC cannot hold, a year-1 time east of Greenwich,
    is written as the first representable one rather than failing the event.)"""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        utc = edge.replace(tzinfo=UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seconds_between(start: str, now: datetime) -> int:
    """Whole seconds from ``start`` to ``now``; 0 if ``now`` is earlier."""
    return max(0, int((now - parse(start)).total_seconds()))


def utcnow() -> datetime:
    return datetime.now(UTC)
