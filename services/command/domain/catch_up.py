"""A catch-up package: the work a student owes after missing a session."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from services.command.domain.aggregate import Aggregate, applies
from services.command.domain.session import Session
from shared.events import CatchUpAssigned, CatchUpCancelled
from shared.tenancy import Actor

CATCH_UP_DUE_AFTER = timedelta(days=7)


class CatchUpStatus(StrEnum):
    PENDING = "PENDING"
    CANCELLED = "CANCELLED"


class CatchUp(Aggregate):
    session_id: UUID
    student_id: UUID
    due_at: datetime
    status: CatchUpStatus

    @classmethod
    def assign_for_absence(
        cls, catch_up_id: UUID, session: Session, student_id: UUID, *, by: Actor
    ) -> CatchUp:
        catch_up = cls(catch_up_id, session.centre_id)
        catch_up._record(
            CatchUpAssigned,
            by,
            session_id=session.id,
            student_id=student_id,
            due_at=session.starts_at + CATCH_UP_DUE_AFTER,
            reason=f"absent from {session.title}",
        )
        return catch_up

    def cancel(self, *, by: Actor, reason: str) -> None:
        if self.status is CatchUpStatus.CANCELLED:
            return
        self._record(
            CatchUpCancelled,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            reason=reason,
        )

    @applies(CatchUpAssigned)
    def _assigned(self, event: CatchUpAssigned) -> None:
        self.session_id = event.session_id
        self.student_id = event.student_id
        self.due_at = event.due_at
        self.status = CatchUpStatus.PENDING

    @applies(CatchUpCancelled)
    def _cancelled(self, event: CatchUpCancelled) -> None:
        self.status = CatchUpStatus.CANCELLED
