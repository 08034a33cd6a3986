"""Bodies of the command API's requests, as a client sends them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def session_body(
    starts_in: timedelta = timedelta(hours=1),
    lasts: timedelta = timedelta(hours=1),
    **overrides: Any,
) -> dict[str, Any]:
    """``POST /api/v1/sessions``: an online session starting ``starts_in`` from now (to the
    second), for ``lasts``; ``overrides`` replace or add fields."""
    starts = datetime.now(UTC).replace(microsecond=0) + starts_in
    return {
        "title": "Fractions",
        "startsAt": starts.isoformat(),
        "endsAt": (starts + lasts).isoformat(),
        "mode": "ONLINE",
        "meetingLink": "https://meet.example.org/fractions",
        **overrides,
    }
