from __future__ import annotations

from typing import ClassVar

from shared.events.base import Event


class CentreRegistered(Event, frozen=True, kw_only=True):
    name: str
    time_zone: str
    help_sla_minutes: dict[str, int]
    """Minutes within which a help request of each priority should be picked up."""

    aggregate_kind: ClassVar[str] = "centre"


class CentreHelpSlasChanged(Event, frozen=True, kw_only=True):
    """The centre changed how fast help requests should be picked up; requests raised from now
    on are due by the new minutes, earlier ones keep their due time."""

    help_sla_minutes: dict[str, int]
    previous_minutes: dict[str, int]

    aggregate_kind: ClassVar[str] = "centre"


class CentreSessionLengthChanged(Event, frozen=True, kw_only=True):
    """The centre changed how long a session may last. Sessions scheduled, moved or extended
    from now on are held to the new maximum; sessions already booked keep their times."""

    max_session_minutes: int
    previous_minutes: int

    aggregate_kind: ClassVar[str] = "centre"


class CentreRemindersChanged(Event, frozen=True, kw_only=True):
    """The centre changed how many minutes before a session starts its people are reminded.
    Sessions whose reminder has not fired yet are reminded by the new lead time. Without this
    event a centre reminds :data:`shared.events.SESSION_REMINDER_MINUTES` minutes before."""

    session_reminder_minutes: int
    previous_minutes: int

    aggregate_kind: ClassVar[str] = "centre"
