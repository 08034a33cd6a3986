"""Sealing as events are made: with the command service's key store installed, a command's
personal texts are sealed before the aggregate applies them (the aggregate, the stored event
and a kept copy hold the sealed text); the size limit is checked on the sealed event; a
person who was erased gets nothing new recorded about them (409); and a rule that compares a
recorded text with a new one still sees them equal. Without a sealer the domain records texts
as given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec
import pytest

from services.command.application import TutoringCentres
from services.command.commands.notes import WriteNote
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EnrolStudent, StartSession
from services.command.domain.aggregate import (
    Aggregate,
    InvalidValue,
    PersonDataWasErased,
    RuleViolated,
    sealing,
)
from services.command.domain.note import TutorNote
from services.command.privacy import PersonalData
from shared import events
from shared.events import MAX_EVENT_BYTES, AttendanceMarked, AttendanceStatus, NoteVisibility
from shared.eventstore import EventStoreSettings
from shared.privacy import KeyStore, LocalKms, PrivacySettings, is_sealed
from shared.privacy.kms import KEY_BYTES
from shared.tenancy import Actor, Role
from tests.builders import Centre, plan, register_centre, session_id

E = TypeVar("E", bound=events.Event)
TUTOR = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")


@pytest.fixture
def privacy(tmp_path: Path) -> Iterator[PersonalData]:
    settings = PrivacySettings()
    keys = KeyStore(
        EventStoreSettings(sqlite_path=tmp_path / "events.sqlite"),
        settings,
        LocalKms({"m1": bytes(range(KEY_BYTES))}),
    )
    yield PersonalData(keys, settings)
    keys.close()


def test_without_a_sealer_texts_are_recorded_as_given() -> None:
    note = TutorNote.write(
        uuid4(), uuid4(), by=TUTOR, content="Jane", visibility=NoteVisibility.INTERNAL
    )
    assert note.content == "Jane"
    assert note.collect_events()[0].content == "Jane"  # type: ignore[attr-defined]


def test_a_note_is_sealed_before_the_aggregate_applies_it(privacy: PersonalData) -> None:
    student = uuid4()
    with sealing(privacy):
        note = TutorNote.write(
            uuid4(), student, by=TUTOR, content="Jane", visibility=NoteVisibility.INTERNAL
        )
    (event,) = note.collect_events()
    assert is_sealed(event.content)  # type: ignore[attr-defined]
    assert note.content == event.content  # type: ignore[attr-defined]
    assert privacy.revealer.text(note.content, "alpha") == "Jane"


def test_an_erased_person_gets_nothing_new_recorded(privacy: PersonalData) -> None:
    student = uuid4()
    privacy.keys.destroy("alpha", student, erased_by=TUTOR.user_id, reason="parent's request")
    with sealing(privacy), pytest.raises(PersonDataWasErased) as refused:
        TutorNote.write(uuid4(), student, by=TUTOR, content="x", visibility=NoteVisibility.INTERNAL)
    assert isinstance(refused.value, RuleViolated)  # answered 409
    assert refused.value.detail == "this person's data was erased"


class Inflating:
    """Seals a text into something far larger than it was."""

    def seal(self, event: E, aggregate: Aggregate) -> E:
        if hasattr(event, "content"):
            return msgspec.structs.replace(event, content="x" * MAX_EVENT_BYTES)
        return event

    def same(self, recorded: str | None, text: str | None, centre_id: str) -> bool:
        return recorded == text


def test_the_size_of_an_event_is_checked_once_it_is_sealed() -> None:
    with sealing(Inflating()), pytest.raises(InvalidValue):
        TutorNote.write(
            uuid4(), uuid4(), by=TUTOR, content="short", visibility=NoteVisibility.INTERNAL
        )


@pytest.fixture
def centres(tmp_path: Path, privacy: PersonalData) -> Iterator[TutoringCentres]:
    app = TutoringCentres(
        EventStoreSettings(sqlite_path=tmp_path / "events.sqlite"), privacy=privacy
    )
    yield app
    app.close()


def live(centres: TutoringCentres, alpha: Centre, *students: str) -> UUID:
    session = session_id(centres.handle(alpha["tutor"], plan()).body)
    for student in students:
        centres.handle(
            alpha["admin"], EnrolStudent(session_id=session, student_id=alpha[student].user_id)
        )
    centres.handle(alpha["tutor"], StartSession(session_id=session))
    return session


def test_marking_again_with_the_same_notes_records_nothing(centres: TutoringCentres) -> None:
    alpha = register_centre(centres, "alpha")
    session = live(centres, alpha, "ann")

    def mark(notes: str) -> Any:
        record = AttendanceRecord(
            student_id=alpha["ann"].user_id, status=AttendanceStatus.PRESENT, notes=notes
        )
        return centres.handle(alpha["tutor"], MarkAttendance(session_id=session, records=[record]))

    mark("came late, with her brother")
    position = centres.position
    mark("came late, with her brother")
    assert centres.position == position
    mark("came on time")
    marks = [
        e
        for n in centres.recorder.select_notifications(1, 10_000)
        if isinstance(e := events.decode(n.state), AttendanceMarked)
    ]
    assert len(marks) == 2 and all(m.notes and is_sealed(m.notes) for m in marks)
    assert [centres.privacy.revealer.text(m.notes, "alpha") for m in marks] == [  # type: ignore[union-attr,arg-type]
        "came late, with her brother",
        "came on time",
    ]


def test_a_person_s_name_is_sealed_in_the_directory_and_the_store(centres: TutoringCentres) -> None:
    alpha = register_centre(centres, "alpha")
    note = centres.handle(
        alpha["tutor"], WriteNote(student_id=alpha["ann"].user_id, content="Ann did well")
    )
    assert note.status_code == 201
    stored = [events.decode(n.state) for n in centres.recorder.select_notifications(1, 10_000)]
    names = [e.name for e in stored if isinstance(e, events.PersonRegistered)]
    assert names and all(is_sealed(name) for name in names)
    assert centres.privacy is not None
    assert sorted(centres.privacy.revealer.text(n, "alpha") for n in names)[:2] == ["Admin", "Ann"]
