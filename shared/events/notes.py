"""Tutor notes about a student: INTERNAL (staff only) or EXTERNAL (parents and the student too)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from shared.events.base import Event


class NoteVisibility(StrEnum):
    INTERNAL = "INTERNAL"
    EXTERNAL = "EXTERNAL"


class TutorNoteWritten(Event, frozen=True, kw_only=True):
    student_id: UUID
    visibility: NoteVisibility
    content: str
    session_id: UUID | None = None

    aggregate_kind: ClassVar[str] = "note"


class TutorNoteEdited(Event, frozen=True, kw_only=True):
    """The author rewrote the note; the earlier text stays in the history."""

    student_id: UUID
    content: str
    visibility: NoteVisibility

    aggregate_kind: ClassVar[str] = "note"


class TutorNoteRedacted(Event, frozen=True, kw_only=True):
    """An admin removed the note from view. Read models drop its text; the audit trail keeps
    that it was written, by whom, and that it was redacted and why."""

    student_id: UUID
    reason: str

    aggregate_kind: ClassVar[str] = "note"
