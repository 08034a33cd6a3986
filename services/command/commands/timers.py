"""What the scheduler asks for when a timer fires. Nobody calls these over HTTP: only SYSTEM may
issue them. Each names the time its timer was set for; a timer that fires for a time the thing
has moved away from (a session moved, a due time changed) is answered, and records nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command
from shared.events import REMINDER_MINUTES


class SendSessionReminder(Command, frozen=True):
    session_id: UUID
    starts_at: datetime
    """The start the reminder was set for."""
    minutes_before: Annotated[int, msgspec.Meta(ge=REMINDER_MINUTES.low, le=REMINDER_MINUTES.high)]


class CompleteOverdueSession(Command, frozen=True):
    session_id: UUID
    ends_at: datetime
    """The end the session was still LIVE past."""


class SendAttendanceReminder(Command, frozen=True):
    session_id: UUID


class EscalateHelpRequest(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    help_request_id: UUID
    sla_due_at: datetime


class SendCatchUpReminder(Command, frozen=True):
    catch_up_id: UUID
    due_at: datetime


class MarkCatchUpOverdue(Command, frozen=True):
    catch_up_id: UUID
    due_at: datetime


class SendHomeworkReminder(Command, frozen=True):
    homework_id: UUID
    due_at: datetime


class MarkHomeworkOverdue(Command, frozen=True):
    homework_id: UUID
    due_at: datetime
