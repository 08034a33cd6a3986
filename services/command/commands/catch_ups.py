"""Catch-up work for a student who missed (part of) a session."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.command.commands.base import Command, Reason


class AssignCatchUp(Command, frozen=True):
    session_id: UUID
    student_id: UUID
    due_at: datetime
    reason: Reason


class StartCatchUp(Command, frozen=True):
    catch_up_id: UUID


class CompleteCatchUp(Command, frozen=True):
    catch_up_id: UUID
