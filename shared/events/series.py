"""A tutor's weekly series of sessions: which sessions one weekly rule scheduled."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shared.events.base import Event
from shared.events.classes import WeeklyRule


class SessionSeriesScheduled(Event, frozen=True, kw_only=True):
    """Recorded in the same commit as the sessions it scheduled."""

    tutor_id: UUID
    title: str
    rule: WeeklyRule
    session_ids: tuple[UUID, ...]

    aggregate_kind: ClassVar[str] = "series"


class SessionSeriesCancelled(Event, frozen=True, kw_only=True):
    """The rest of the series is called off: ``cancelled_session_ids`` are the sessions that
    were still SCHEDULED (each also records its own SessionCancelled); the others stand."""

    reason: str
    cancelled_session_ids: tuple[UUID, ...]

    aggregate_kind: ClassVar[str] = "series"
