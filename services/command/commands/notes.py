"""Tutors' notes about a student."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, Reason
from shared.events import NoteVisibility

NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class WriteNote(Command, frozen=True):
    student_id: UUID
    content: NoteText
    visibility: NoteVisibility = NoteVisibility.INTERNAL
    session_id: UUID | None = None


class EditNote(Command, frozen=True):
    note_id: UUID
    content: NoteText
    visibility: NoteVisibility | None = None
    """Omitted: as it was."""


class RedactNote(Command, frozen=True):
    note_id: UUID
    reason: Reason
