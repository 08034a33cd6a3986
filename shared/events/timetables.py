"""A tutor's timetable: which of their sessions take up which time, one week at a time."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from shared.events.base import Event


class TimetableBooking(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The time one session of the tutor takes up."""

    session_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime


class TimetableEvent(Event, frozen=True, kw_only=True):
    aggregate_kind: ClassVar[str] = "timetable"
    is_abstract: ClassVar[bool] = True


class TimetableSessionBooked(TimetableEvent, frozen=True, kw_only=True):
    tutor_id: UUID
    week_of: date
    """The Monday (UTC) the week starts on."""
    booking: TimetableBooking


class TimetableSessionMoved(TimetableEvent, frozen=True, kw_only=True):
    booking: TimetableBooking
    """The session's new times."""


class TimetableSessionReleased(TimetableEvent, frozen=True, kw_only=True):
    booking: TimetableBooking
    """The time given back, as it was booked."""
    reason: str
