"""A catch-up package: the work a student owes after missing a session."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    applies,
)
from services.command.domain.session import Session
from shared.events import (
    OPEN_CATCH_UPS,
    CatchUpAssigned,
    CatchUpBecameOverdue,
    CatchUpCancelled,
    CatchUpCompleted,
    CatchUpReminderSent,
    CatchUpStarted,
    CatchUpStatus,
)
from shared.tenancy import Actor

CATCH_UP_DUE_AFTER = timedelta(days=7)
MAX_REASON = 500


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

    @classmethod
    def assign_for_cancellation(
        cls, session: Session, student_id: UUID, *, by: Actor, due_at: datetime
    ) -> CatchUp:
        """The work a student of a cancelled session makes up for it (one per student and
        session, so its id is derived from both)."""
        return cls.assign(
            uuid5(session.id, f"cancelled:{student_id}"),
            session,
            student_id,
            by=by,
            due_at=due_at,
            reason=f"{session.title} was cancelled",
        )

    @classmethod
    def assign(
        cls,
        catch_up_id: UUID,
        session: Session,
        student_id: UUID,
        *,
        by: Actor,
        due_at: datetime,
        reason: str,
    ) -> CatchUp:
        """A catch-up set by staff, for any reason (not only an absence)."""
        if not session.is_enrolled(student_id):
            raise InvalidValue("the student is not enrolled in this session", field="student_id")
        values.moment(due_at, "due_at")
        reason = values.reason(reason, MAX_REASON)
        catch_up = cls(catch_up_id, session.centre_id)
        catch_up._record(
            CatchUpAssigned,
            by,
            session_id=session.id,
            student_id=student_id,
            due_at=due_at,
            reason=reason,
        )
        return catch_up

    def start(self, *, by: Actor) -> None:
        if self.status is not CatchUpStatus.PENDING:
            raise InvalidTransition(f"cannot start a catch-up that is {self.status}")
        self._record(CatchUpStarted, by, session_id=self.session_id, student_id=self.student_id)

    def complete(self, *, by: Actor) -> None:
        if self.status not in OPEN_CATCH_UPS:
            raise InvalidTransition(f"cannot complete a catch-up that is {self.status}")
        self._record(CatchUpCompleted, by, session_id=self.session_id, student_id=self.student_id)

    def cancel(self, *, by: Actor, reason: str) -> None:
        """Taken back (the absence was excused); a finished catch-up stays finished."""
        if self.status not in OPEN_CATCH_UPS:
            return
        self._record(
            CatchUpCancelled,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            reason=reason,
        )

    # --- what timers do (recorded by SYSTEM) ----------------------------------------------

    def remind(self, *, by: Actor, due_at: datetime) -> bool:
        """The catch-up is due soon: the student and their parents are reminded. ``False``
        when it no longer applies (done or cancelled, due at another time, reminded already)."""
        if not self._open_and_due_at(due_at) or self.reminded_for == due_at:
            return False
        self._record(CatchUpReminderSent, by, **self._timer_fields())
        return True

    def become_overdue(self, *, by: Actor, due_at: datetime) -> bool:
        """The due time passed while the catch-up was open; ``False`` when it no longer
        applies (done or cancelled, due at another time, overdue already)."""
        if not self._open_and_due_at(due_at) or self.overdue:
            return False
        self._record(CatchUpBecameOverdue, by, **self._timer_fields())
        return True

    def _open_and_due_at(self, due_at: datetime) -> bool:
        return self.status in OPEN_CATCH_UPS and due_at == self.due_at

    def _timer_fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "catch_up_id": self.id,
            "student_id": self.student_id,
            "due_at": self.due_at,
        }

    def _blank(self) -> None:
        self.reminded_for: datetime | None = None
        self.overdue = False

    @applies(CatchUpReminderSent)
    def _reminded(self, event: CatchUpReminderSent) -> None:
        self.reminded_for = event.due_at

    @applies(CatchUpBecameOverdue)
    def _became_overdue(self, event: CatchUpBecameOverdue) -> None:
        self.overdue = True

    @applies(CatchUpAssigned)
    def _assigned(self, event: CatchUpAssigned) -> None:
        self.session_id = event.session_id
        self.student_id = event.student_id
        self.due_at = event.due_at
        self.status = CatchUpStatus.PENDING

    @applies(CatchUpStarted)
    def _started(self, event: CatchUpStarted) -> None:
        self.status = CatchUpStatus.IN_PROGRESS

    @applies(CatchUpCompleted)
    def _completed(self, event: CatchUpCompleted) -> None:
        self.status = CatchUpStatus.COMPLETED

    @applies(CatchUpCancelled)
    def _cancelled(self, event: CatchUpCancelled) -> None:
        self.status = CatchUpStatus.CANCELLED
