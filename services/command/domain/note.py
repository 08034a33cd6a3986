"""A tutor's note about a student."""

from __future__ import annotations

from uuid import UUID

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    RuleViolated,
    applies,
)
from shared.events import NoteVisibility, TutorNoteEdited, TutorNoteRedacted, TutorNoteWritten
from shared.tenancy import Actor, Role

MAX_NOTE = 4000
EDITORS_OF_ANY_NOTE = frozenset({Role.SUPER_ADMIN, Role.CENTER_ADMIN})


class TutorNote(Aggregate):
    student_id: UUID
    author_id: UUID
    visibility: NoteVisibility
    content: str
    redacted: bool

    @classmethod
    def write(
        cls,
        note_id: UUID,
        student_id: UUID,
        *,
        by: Actor,
        content: str,
        visibility: NoteVisibility,
        session_id: UUID | None = None,
    ) -> TutorNote:
        note = cls(note_id, by.centre_id)
        note._record(
            TutorNoteWritten,
            by,
            student_id=student_id,
            visibility=visibility,
            content=_checked(content),
            session_id=session_id,
        )
        return note

    def edit(self, *, by: Actor, content: str, visibility: NoteVisibility | None = None) -> None:
        if self.redacted:
            raise InvalidTransition("a redacted note cannot be edited")
        if by.user_id != self.author_id and by.role not in EDITORS_OF_ANY_NOTE:
            raise RuleViolated("only the author (or a centre admin) edits a note")
        self._record(
            TutorNoteEdited,
            by,
            student_id=self.student_id,
            content=_checked(content),
            visibility=visibility or self.visibility,
        )

    def redact(self, *, by: Actor, reason: str) -> None:
        if self.redacted:
            raise InvalidTransition("the note is already redacted")
        self._record(
            TutorNoteRedacted, by, student_id=self.student_id, reason=values.reason(reason)
        )

    def _blank(self) -> None:
        self.redacted = False

    @applies(TutorNoteWritten)
    def _written(self, event: TutorNoteWritten) -> None:
        self.student_id, self.author_id = event.student_id, event.actor_id
        self.visibility, self.content = event.visibility, event.content

    @applies(TutorNoteEdited)
    def _edited(self, event: TutorNoteEdited) -> None:
        self.content, self.visibility = event.content, event.visibility

    @applies(TutorNoteRedacted)
    def _redacted(self, event: TutorNoteRedacted) -> None:
        self.redacted, self.content = True, ""


def _checked(content: str) -> str:
    return values.text(content, "content", MAX_NOTE, lines=True, what="note")
