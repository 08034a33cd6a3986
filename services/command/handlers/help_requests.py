"""A student asks for help in a live session; their tutor sees it, helps, and resolves it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from services.command.commands.help_requests import (
    AcknowledgeHelpRequest,
    CancelHelpRequest,
    RaiseHelpRequest,
    ResolveHelpRequest,
    StartHelping,
)
from services.command.domain.aggregate import NotFound
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from services.command.handlers.common import seat, seat_holding, session_run_by
from services.command.responses import HelpRequestView, time
from services.command.unit_of_work import UnitOfWork


def raise_help_request(command: RaiseHelpRequest, uow: UnitOfWork) -> HelpRequestView:
    centre = uow.centre()
    session = uow.find(Session, command.session_id)
    own = seat(uow, session, uow.actor.user_id)
    request_id = own.raise_help_request(
        session,
        command.priority,
        by=uow.actor,
        sla=timedelta(minutes=centre.help_sla_minutes_for(command.priority)),
        exercise_id=command.exercise_id,
        message=command.message,
    )
    request = own.help_requests[request_id]
    return HelpRequestView(
        help_request_id=request_id,
        session_id=command.session_id,
        priority=request.priority,
        status=request.status,
        sla_due_at=time(request.sla_due_at),
    )


def _handle(
    uow: UnitOfWork, session_id: UUID, request_id: UUID, act: Callable[[Seat], None]
) -> HelpRequestView:
    """A tutor of the session moves a request of one of its students on."""
    session = session_run_by(uow, session_id)
    holder = seat_holding(
        uow,
        session,
        session.roster,
        lambda s: request_id in s.help_requests,
        "no such help request in this session",
    )
    act(holder)
    return HelpRequestView.of(holder, request_id)


def acknowledge_help_request(command: AcknowledgeHelpRequest, uow: UnitOfWork) -> HelpRequestView:
    return _handle(
        uow,
        command.session_id,
        command.request_id,
        lambda s: s.acknowledge_help_request(command.request_id, by=uow.actor),
    )


def start_helping(command: StartHelping, uow: UnitOfWork) -> HelpRequestView:
    return _handle(
        uow,
        command.session_id,
        command.request_id,
        lambda s: s.start_helping(command.request_id, by=uow.actor),
    )


def resolve_help_request(command: ResolveHelpRequest, uow: UnitOfWork) -> HelpRequestView:
    return _handle(
        uow,
        command.session_id,
        command.request_id,
        lambda s: s.resolve_help_request(
            command.request_id, by=uow.actor, response=command.response
        ),
    )


def cancel_help_request(command: CancelHelpRequest, uow: UnitOfWork) -> HelpRequestView:
    """The student who asked withdraws their request."""
    session = uow.find(Session, command.session_id)
    own = seat(uow, session, uow.actor.user_id)
    if command.request_id not in own.help_requests:
        raise NotFound("no such help request of yours in this session")
    own.cancel_help_request(command.request_id, by=uow.actor)
    return HelpRequestView.of(own, command.request_id)
