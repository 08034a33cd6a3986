from __future__ import annotations

from typing import ClassVar

from shared.events.base import Event


class CentreRegistered(Event, frozen=True, kw_only=True):
    name: str
    time_zone: str
    help_sla_minutes: dict[str, int]
    """Minutes within which a help request of each priority should be picked up."""

    aggregate_kind: ClassVar[str] = "centre"
