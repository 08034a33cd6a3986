"""The values a command may bring into the domain, checked in one place.

Whatever the domain records is read back by every later step: the aggregate when it is
loaded again, the projections, the read models in PostgreSQL (whose JSON cannot hold a NUL
character), the views that add days to a date, and clients that print a title on one line. A
value one of them could not honour is refused here, before any event carries it, as an
:class:`InvalidValue` naming the field it came in (HTTP 422):

* times carry a UTC offset and fall in the years 2000 to 2100, so that any date a rule derives
  from them (a catch-up due a week later, a session's end) is still an ordinary date;
* text has no control characters (NUL, escape, …; line breaks and tabs only where a text may
  run over several lines) and no lone surrogates, and has a bounded length;
* numbers are finite and within their range, lists and mappings of a bounded size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sized
from datetime import UTC, date, datetime

from services.command.domain.aggregate import InvalidValue

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""The first instant a command may name."""
END_OF_TIME = datetime(2101, 1, 1, tzinfo=UTC)
"""The first instant after the last one a command may name (the end of the year 2100)."""

TITLE = 200
"""Names, titles, subjects, locations: one line."""
REF = 100
"""Ids of things kept outside tutorpulse: courses, lessons, exercises of a curriculum."""
LINK = 500
REASON = 500
NOTE = 2000
"""Notes, messages, responses, feedback, instructions: may run over several lines."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Characters no text may hold: C0 and C1 controls except tab and line breaks, surrogates."""
_CONTROL_ON_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Characters a one-line text may not hold: every control character and line separator."""


def moment(value: datetime, field: str) -> datetime:
    """An instant with a UTC offset in the years 2000 to 2100."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue("a time must carry a UTC offset (Z or +hh:mm)", field=field)
    if not EARLIEST <= value < END_OF_TIME:
        raise InvalidValue("a time must fall in the years 2000 to 2100", field=field)
    return value


def day(value: date, field: str) -> date:
    """A calendar day in the years 2000 to 2100."""
    if not EARLIEST.date() <= value < END_OF_TIME.date():
        raise InvalidValue("a date must fall in the years 2000 to 2100", field=field)
    return value


def _clean(value: str, field: str, limit: int, lines: bool) -> str:
    if not isinstance(value, str):
        raise InvalidValue("expected text", field=field)
    if len(value) > limit:
        raise InvalidValue(f"at most {limit} characters", field=field)
    if (_CONTROL if lines else _CONTROL_ON_ONE_LINE).search(value):
        kinds = "control characters" if lines else "control characters or line breaks"
        raise InvalidValue(f"must not contain {kinds} (such as NUL)", field=field)
    return value


def text(value: str, field: str, limit: int, *, lines: bool = False, what: str = "text") -> str:
    """Text that must be given: not blank, at most ``limit`` characters; returned stripped.
    ``lines``: it may hold line breaks and tabs (a note, a message), not only one line."""
    _clean(value, field, limit, lines)
    if not value.strip():
        raise InvalidValue(f"give the {what} (1 to {limit} characters)", field=field)
    return value.strip()


def free_text(value: str | None, field: str, limit: int, *, lines: bool = True) -> str | None:
    """Optional text, returned as given (``None`` stays ``None``)."""
    if value is None:
        return None
    return _clean(value, field, limit, lines)


def reason(value: str, limit: int = REASON, field: str = "reason") -> str:
    """A reason someone must give for what they do: not blank, at most ``limit`` characters."""
    return text(value, field, limit, lines=True, what="reason")


def ref(value: str | None, field: str, limit: int = REF) -> str | None:
    """An optional id of something outside tutorpulse (a course, a lesson): one line, not
    blank, at most ``limit`` characters; returned stripped."""
    if value is None:
        return None
    return text(value, field, limit, what="id")


def whole(value: int, field: str, low: int, high: int, *, unit: str = "") -> int:
    """A whole number from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(f"a whole number from {low} to {high}{unit}", field=field)
    return value


def finite(value: float, field: str, low: float, high: float) -> float:
    """A finite number from ``low`` to ``high``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidValue(f"a number from {low:g} to {high:g}", field=field)
    return value


def at_most(items: Sized, field: str, limit: int, what: str = "items") -> None:
    """A list or mapping of at most ``limit`` entries."""
    if len(items) > limit:
        raise InvalidValue(f"at most {limit} {what}", field=field)
