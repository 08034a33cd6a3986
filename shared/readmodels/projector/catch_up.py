"""Catch-ups: the ``catch_up`` document of each package, and its row in the session's
Control Center (events of one catch-up, applied in order)."""

from __future__ import annotations

from shared import events as ev
from shared.readmodels.documents import CATCH_UP, CatchUp, SeatCatchUp, Session
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.indexes import index_catch_up
from shared.readmodels.projector.registry import projects
from shared.readmodels.projector.session import seat, update_session
from shared.readmodels.times import iso


@projects(ev.CatchUpAssigned)
def catch_up_assigned(docs: Batch, e: ev.CatchUpAssigned) -> None:
    key = str(e.aggregate_id)
    row = SeatCatchUp(
        catch_up_id=key, status=ev.CatchUpStatus.PENDING, due_at=iso(e.due_at), reason=e.reason
    )

    def change(session: Session) -> None:
        seat(session, str(e.student_id)).catch_ups[key] = row

    session = update_session(docs, e, change)
    # After the session, which may not be there yet (OutOfOrder).
    catch_up = CatchUp(
        catch_up_id=key,
        session_id=str(e.session_id),
        student_id=str(e.student_id),
        reason=e.reason,
        due_at=iso(e.due_at),
        status=ev.CatchUpStatus.PENDING,
        assigned_at=iso(e.occurred_at),
        assigned_by=str(e.actor_id),
    )
    docs.put(CATCH_UP, key, e.centre_id, catch_up)
    index_catch_up(docs, catch_up, session)


CatchUpMoved = ev.CatchUpStarted | ev.CatchUpCompleted | ev.CatchUpCancelled


def _move(catch_up: SeatCatchUp | CatchUp, e: CatchUpMoved) -> None:
    """The catch-up moves to its next status and gets the time stamp of that move."""
    at = iso(e.occurred_at)
    if isinstance(e, ev.CatchUpStarted):
        catch_up.status, catch_up.started_at = ev.CatchUpStatus.IN_PROGRESS, at
    elif isinstance(e, ev.CatchUpCompleted):
        catch_up.status, catch_up.completed_at = ev.CatchUpStatus.COMPLETED, at
    else:
        catch_up.status, catch_up.cancelled_at = ev.CatchUpStatus.CANCELLED, at


@projects(ev.CatchUpStarted, ev.CatchUpCompleted, ev.CatchUpCancelled)
def catch_up_moved(docs: Batch, e: CatchUpMoved) -> None:
    key = str(e.aggregate_id)

    def change(session: Session) -> None:
        # Assigned before it moves: both are events of the same catch-up, applied in order.
        _move(session.students[str(e.student_id)].catch_ups[key], e)

    session = update_session(docs, e, change)
    catch_up = docs.get(CATCH_UP, key)
    if catch_up is None:  # assigned before catch-up documents were kept: a rebuild lists it
        return
    _move(catch_up, e)
    if isinstance(e, ev.CatchUpCancelled):
        catch_up.cancel_reason = e.reason
    docs.put(CATCH_UP, key, e.centre_id, catch_up)
    index_catch_up(docs, catch_up, session)


CatchUpTimer = ev.CatchUpReminderSent | ev.CatchUpBecameOverdue


def _timed(catch_up: SeatCatchUp | CatchUp, e: CatchUpTimer) -> None:
    """What the system recorded of the catch-up's due time: a reminder, or that it passed."""
    if isinstance(e, ev.CatchUpReminderSent):
        catch_up.reminded_at = iso(e.occurred_at)
    else:
        catch_up.overdue_at = iso(e.occurred_at)


@projects(ev.CatchUpReminderSent, ev.CatchUpBecameOverdue)
def catch_up_timed(docs: Batch, e: CatchUpTimer) -> None:
    key = str(e.catch_up_id)

    def change(session: Session) -> None:
        # Assigned first: both are events of the same catch-up, applied in order.
        _timed(session.students[str(e.student_id)].catch_ups[key], e)

    session = update_session(docs, e, change)
    catch_up = docs.get(CATCH_UP, key)
    if catch_up is None:  # assigned before catch-up documents were kept: a rebuild lists it
        return
    _timed(catch_up, e)
    docs.put(CATCH_UP, key, e.centre_id, catch_up)
    index_catch_up(docs, catch_up, session)
