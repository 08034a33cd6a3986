"""A student asks for help in a live session; the tutor sees it, helps, and resolves it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, LongText, Ref
from shared.events import HelpPriority


class RaiseHelpRequest(Command, frozen=True):
    session_id: UUID
    priority: HelpPriority = HelpPriority.MEDIUM
    exercise_id: Ref | None = None
    message: LongText | None = None


class AcknowledgeHelpRequest(Command, frozen=True):
    session_id: UUID
    request_id: UUID


class StartHelping(Command, frozen=True):
    session_id: UUID
    request_id: UUID


class ResolveHelpRequest(Command, frozen=True):
    session_id: UUID
    request_id: UUID
    response: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class CancelHelpRequest(Command, frozen=True):
    """The student who asked withdraws their request."""

    session_id: UUID
    request_id: UUID
