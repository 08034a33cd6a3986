"""Tutors' notes about a student."""

from __future__ import annotations

from uuid import uuid4

from services.command.commands.notes import EditNote, RedactNote, WriteNote
from services.command.domain.note import EDITORS_OF_ANY_NOTE, TutorNote
from services.command.domain.session import Session
from services.command.handlers.common import student
from services.command.responses import NoteView
from services.command.unit_of_work import UnitOfWork
from shared.tenancy import Forbidden


def write_note(command: WriteNote, uow: UnitOfWork) -> NoteView:
    student(uow, command.student_id, field="student_id", refusal="notes are written about students")
    if command.session_id is not None:
        uow.find(Session, command.session_id, field="session_id")
    note = TutorNote.write(
        uuid4(),
        command.student_id,
        by=uow.actor,
        content=command.content,
        visibility=command.visibility,
        session_id=command.session_id,
    )
    uow.add(note)
    return NoteView.of(note)


def edit_note(command: EditNote, uow: UnitOfWork) -> NoteView:
    note = uow.find(TutorNote, command.note_id)
    if note.author_id != uow.actor.user_id and uow.actor.role not in EDITORS_OF_ANY_NOTE:
        raise Forbidden("only the author (or a centre admin) edits a note")
    note.edit(by=uow.actor, content=command.content, visibility=command.visibility)
    return NoteView.of(note)


def redact_note(command: RedactNote, uow: UnitOfWork) -> NoteView:
    note = uow.find(TutorNote, command.note_id)
    note.redact(by=uow.actor, reason=command.reason)
    return NoteView.of(note)
