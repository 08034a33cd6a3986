"""The table of personal fields: every text of every event type is classified, personal or
not, and sealing an event seals exactly its personal texts with the key of the person they
are about, leaving ``None`` and texts already sealed as they are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import msgspec
import msgspec.inspect as mi
import pytest

from shared.events import (
    AttendanceMarked,
    AttendanceStatus,
    ExerciseSubmitted,
    HomeworkStatus,
    HomeworkSubmitted,
    PaperAnnotated,
    PersonRegistered,
    TutorNoteWritten,
    WorkStatus,
    event_types,
)
from shared.events.notes import NoteVisibility
from shared.events.paper import Point, Stroke, TextNote
from shared.eventstore.settings import EventStoreSettings
from shared.privacy import FieldCipher, KeyStore, LocalKms, PrivacySettings, is_sealed
from shared.privacy.cipher import parse
from shared.privacy.fields import NOT_PERSONAL, PERSONAL_FIELDS, seal_event
from shared.privacy.keys import PersonErased
from shared.privacy.kms import KEY_BYTES
from shared.tenancy import Role

CENTRE = "main-campus"
ADMIN = UUID(int=1)
_ENVELOPE = {"centreId", "aggregateId"}


def _texts(info: Any, path: str, found: set[str]) -> None:
    """Every path of ``info`` that holds a text (or anything: ``Any`` may hold one)."""
    if isinstance(info, mi.StrType | mi.AnyType):
        found.add(path)
    elif isinstance(info, mi.Metadata):
        _texts(info.type, path, found)
    elif isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        _texts(info.item_type, f"{path}.*", found)
    elif isinstance(info, mi.TupleType):
        for item in info.item_types:
            _texts(item, f"{path}.*", found)
    elif isinstance(info, mi.DictType):
        _texts(info.key_type, f"{path}.<key>", found)
        _texts(info.value_type, f"{path}.*", found)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            _texts(member, path, found)
    elif isinstance(info, mi.StructType):
        for field in info.fields:
            _texts(field.type, f"{path}.{field.encode_name}" if path else field.encode_name, found)


def texts_of(cls: type[msgspec.Struct]) -> set[str]:
    found: set[str] = set()
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        if field.encode_name not in _ENVELOPE:
            _texts(field.type, field.encode_name, found)
    return found


def test_every_text_of_every_event_type_is_classified_personal_or_not() -> None:
    unclassified = {}
    for name, cls in event_types().items():
        if not cls.__module__.startswith("shared.events."):
            continue  # a type another test registers for itself
        personal = PERSONAL_FIELDS[name].paths if name in PERSONAL_FIELDS else frozenset()
        rest = texts_of(cls) - personal - NOT_PERSONAL.get(name, frozenset())
        if rest:
            unclassified[name] = sorted(rest)
    assert unclassified == {}, (
        "say in shared/privacy/fields.py whether these texts are personal data "
        "(PERSONAL_FIELDS, with whose key seals them) or not (NOT_PERSONAL, and why)"
    )


def test_the_tables_name_only_texts_that_exist_and_each_once() -> None:
    types = event_types()
    for name, personal in PERSONAL_FIELDS.items():
        assert personal.paths <= texts_of(types[name]), name
        assert not personal.paths & NOT_PERSONAL.get(name, frozenset()), name
    for name, paths in NOT_PERSONAL.items():
        assert paths <= texts_of(types[name]), name


def test_the_table_has_the_personal_data_of_the_privacy_page() -> None:
    assert PERSONAL_FIELDS["PersonRegistered"].paths == {"name", "email"}
    assert PERSONAL_FIELDS["TutorNoteWritten"].paths == {"content"}
    assert PERSONAL_FIELDS["HelpRequestRaised"].paths == {"message"}
    assert PERSONAL_FIELDS["HomeworkSubmitted"].paths == {"answers.*.*"}
    assert PERSONAL_FIELDS["PaperAnnotated"].paths == {"mark.text"}
    assert "webhookSecret" in NOT_PERSONAL["NotificationChannelsConfigured"]


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    store = KeyStore(
        EventStoreSettings(sqlite_path=tmp_path / "tutorpulse.sqlite"),
        PrivacySettings(),
        LocalKms({"m1": bytes(range(KEY_BYTES))}),
    )
    yield store
    store.close()


def envelope(aggregate_id: UUID | None = None) -> dict[str, Any]:
    return {
        "centre_id": CENTRE,
        "aggregate_id": aggregate_id or uuid4(),
        "aggregate_version": 1,
        "occurred_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "actor_id": ADMIN,
        "actor_role": Role.CENTER_ADMIN,
    }


def test_a_person_s_name_and_e_mail_are_sealed_with_their_own_key(keys: KeyStore) -> None:
    cipher = FieldCipher(keys)
    person = uuid4()
    event = PersonRegistered(
        **envelope(person), name="Jane Citizen", email="jane@example.org", role=Role.STUDENT
    )
    sealed = seal_event(event, cipher)
    assert is_sealed(sealed.name) and is_sealed(sealed.email)
    assert parse(sealed.name).person_id == person
    assert cipher.decrypt(sealed.name, centre_id=CENTRE) == "Jane Citizen"
    assert cipher.decrypt(sealed.email, centre_id=CENTRE) == "jane@example.org"
    assert sealed.role is Role.STUDENT and sealed.aggregate_id == person
    assert seal_event(sealed, cipher) == sealed  # sealed already: left as it is


def test_a_note_is_sealed_with_its_student_s_key_and_none_stays_none(keys: KeyStore) -> None:
    cipher = FieldCipher(keys)
    student = uuid4()
    note = TutorNoteWritten(
        **envelope(),
        student_id=student,
        visibility=NoteVisibility.INTERNAL,
        content="Jane finds fractions hard",
    )
    sealed = seal_event(note, cipher)
    assert parse(sealed.content).person_id == student
    assert cipher.decrypt(sealed.content, centre_id=CENTRE) == "Jane finds fractions hard"

    session = uuid4()
    mark = AttendanceMarked(
        **envelope(session),
        session_id=session,
        student_id=student,
        status=AttendanceStatus.PRESENT,
        notes=None,
    )
    assert seal_event(mark, cipher) is mark
    assert keys.fetch(CENTRE, uuid4()) is None  # nothing to seal: no key made


def test_answers_are_sealed_value_by_value_and_their_keys_stay(keys: KeyStore) -> None:
    cipher = FieldCipher(keys)
    student, exercise = uuid4(), uuid4()
    homework = HomeworkSubmitted(
        **envelope(),
        student_id=student,
        teacher_id=ADMIN,
        answers={str(exercise): {"q1": "Canberra", "q2": "42"}},
        on_time=True,
        status=HomeworkStatus.SUBMITTED,
        max_score=2,
    )
    sealed = seal_event(homework, cipher)
    assert set(sealed.answers) == {str(exercise)}
    assert set(sealed.answers[str(exercise)]) == {"q1", "q2"}
    opened = {
        q: cipher.decrypt(a, centre_id=CENTRE) for q, a in sealed.answers[str(exercise)].items()
    }
    assert opened == {"q1": "Canberra", "q2": "42"}

    session = uuid4()
    work = ExerciseSubmitted(
        **envelope(session),
        session_id=session,
        student_id=student,
        work_id=uuid4(),
        answers={"q1": "Sydney"},
        status=WorkStatus.SUBMITTED,
        max_score=1,
    )
    assert cipher.decrypt(seal_event(work, cipher).answers["q1"], centre_id=CENTRE) == "Sydney"


def test_a_text_on_a_paper_is_sealed_with_its_student_s_key_once_routed(keys: KeyStore) -> None:
    cipher = FieldCipher(keys)
    upload, student = uuid4(), uuid4()
    note = PaperAnnotated(
        **envelope(upload),
        annotation_id=uuid4(),
        page=0,
        mark=TextNote(at=Point(0.5, 0.5), text="Well done Jane"),
    )
    routed = seal_event(note, cipher, SimpleNamespace(student_id=student))
    assert isinstance(routed.mark, TextNote)
    assert parse(routed.mark.text).person_id == student
    not_routed = seal_event(note, cipher, SimpleNamespace(student_id=None))
    assert isinstance(not_routed.mark, TextNote)
    assert parse(not_routed.mark.text).person_id == upload

    stroke = PaperAnnotated(
        **envelope(upload), annotation_id=uuid4(), page=0, mark=Stroke(points=(Point(0, 0),))
    )
    assert seal_event(stroke, cipher, SimpleNamespace(student_id=student)) is stroke


def test_sealing_for_an_erased_person_is_refused(keys: KeyStore) -> None:
    cipher = FieldCipher(keys)
    student = uuid4()
    keys.destroy(CENTRE, student, erased_by=ADMIN, reason="parent's request")
    note = TutorNoteWritten(
        **envelope(), student_id=student, visibility=NoteVisibility.INTERNAL, content="text"
    )
    with pytest.raises(PersonErased):
        seal_event(note, cipher)
