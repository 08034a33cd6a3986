"""Catch-up work for a student of a session, set by staff or opened by an absence."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from services.command.commands.catch_ups import AssignCatchUp, CompleteCatchUp, StartCatchUp
from services.command.domain.aggregate import NotFound
from services.command.domain.catch_up import CatchUp
from services.command.handlers.common import session_run_by
from services.command.responses import CatchUpView
from services.command.unit_of_work import UnitOfWork
from shared.tenancy import Role


def assign_catch_up(command: AssignCatchUp, uow: UnitOfWork) -> CatchUpView:
    """Staff set catch-up work for a student of a session, whatever the reason."""
    session = session_run_by(uow, command.session_id)
    catch_up = CatchUp.assign(
        uuid4(),
        session,
        command.student_id,
        by=uow.actor,
        due_at=command.due_at,
        reason=command.reason,
    )
    uow.add(catch_up)
    return CatchUpView.of(catch_up)


def _progress(uow: UnitOfWork, catch_up_id: UUID, act: Callable[[CatchUp], None]) -> CatchUpView:
    """A STUDENT moves only their own catch-ups on, a TEACHER those of their sessions."""
    catch_up = uow.find(CatchUp, catch_up_id)
    if uow.actor.role is Role.STUDENT and catch_up.student_id != uow.actor.user_id:
        raise NotFound("no such catch-up")
    if uow.actor.role is Role.TEACHER:
        session_run_by(uow, catch_up.session_id)
    act(catch_up)
    return CatchUpView.of(catch_up)


def start_catch_up(command: StartCatchUp, uow: UnitOfWork) -> CatchUpView:
    return _progress(uow, command.catch_up_id, lambda c: c.start(by=uow.actor))


def complete_catch_up(command: CompleteCatchUp, uow: UnitOfWork) -> CatchUpView:
    return _progress(uow, command.catch_up_id, lambda c: c.complete(by=uow.actor))
