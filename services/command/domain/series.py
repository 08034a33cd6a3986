"""A weekly series of one tutor's sessions, so that the rest of it can be called off at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    RuleViolated,
    applies,
)
from services.command.domain.session import Session
from shared.events import SessionSeriesCancelled, SessionSeriesScheduled, SessionStatus, WeeklyRule
from shared.tenancy import Actor

MAX_REASON = 500


class SessionSeries(Aggregate):
    tutor_id: UUID
    session_ids: tuple[UUID, ...]
    cancelled: bool

    @classmethod
    def schedule(
        cls,
        series_id: UUID,
        centre_id: str,
        sessions: Sequence[Session],
        *,
        by: Actor,
        rule: WeeklyRule,
        title: str,
    ) -> SessionSeries:
        series = cls(series_id, centre_id)
        series._record(
            SessionSeriesScheduled,
            by,
            tutor_id=sessions[0].tutor_id,
            title=title,
            rule=rule,
            session_ids=tuple(s.id for s in sessions),
        )
        return series

    def cancel(self, sessions: Sequence[Session], *, by: Actor, reason: str) -> list[Session]:
        """Cancel every session of the series still to come; the ones cancelled. A session whose
        time has passed without it being started is left for staff to deal with on its own."""
        if self.cancelled:
            raise InvalidTransition("the series is already cancelled")
        reason = values.reason(reason, MAX_REASON)
        now = datetime.now(UTC)
        remaining = [
            s
            for s in sessions
            if s.id in self.session_ids
            and s.status is SessionStatus.SCHEDULED
            and s.starts_at > now
        ]
        if not remaining:
            raise RuleViolated("no session of this series is still to come")
        self._record(
            SessionSeriesCancelled,
            by,
            reason=reason,
            cancelled_session_ids=tuple(s.id for s in remaining),
        )
        for session in remaining:
            session.cancel(by=by, reason=reason)
        return remaining

    def _blank(self) -> None:
        self.cancelled = False

    @applies(SessionSeriesScheduled)
    def _scheduled(self, event: SessionSeriesScheduled) -> None:
        self.tutor_id, self.session_ids = event.tutor_id, event.session_ids

    @applies(SessionSeriesCancelled)
    def _cancelled(self, event: SessionSeriesCancelled) -> None:
        self.cancelled = True
