"""Sealed texts opened as an answer of the API opens them: for tests that read what tutorpulse
keeps (events, read-model documents) and compare its texts with what was sent."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from services.command.application import TutoringCentres
from shared import events
from shared.events import Event

T = TypeVar("T")


def opened_event(centres: TutoringCentres, event: Event) -> Event:
    """``event`` with its sealed texts opened for its centre (as it is where nothing is
    sealed)."""
    if centres.privacy is None:
        return event
    data = centres.privacy.revealer.json(events.encode(event), event.centre_id)
    return events.decode(data)


def opened(centres: TutoringCentres, value: T, centre_id: str) -> T:
    """A read-model answer's data (or any JSON-able value) with its sealed texts opened for
    ``centre_id``, as the query API answers it."""
    if centres.privacy is None:
        return value
    data = centres.privacy.revealer.json(msgspec.json.encode(value), centre_id)
    found: Any = msgspec.json.decode(data, type=type(value))
    return found  # type: ignore[no-any-return]
