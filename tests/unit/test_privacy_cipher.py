"""Field encryption: a sealed field opens only for its own centre, person and field, with its
own key; any change to it is refused; after the person's key is destroyed it reads as erased."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.eventstore.settings import EventStoreSettings
from shared.privacy import (
    CiphertextError,
    DataKey,
    Erased,
    FieldCipher,
    KeyStore,
    LocalKms,
    MalformedCiphertext,
    PrivacySettings,
    TamperedCiphertext,
    is_sealed,
    seal,
    unseal,
)
from shared.privacy.cipher import parse
from shared.privacy.kms import KEY_BYTES

ADMIN = UUID(int=1)
FIELDS = st.sampled_from(["text", "name", "email", "responses", "message"])
CENTRES = st.sampled_from(["main-campus", "north-campus"])
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def cipher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FieldCipher]:
    folder: Path = tmp_path_factory.mktemp("keys")
    keys = KeyStore(
        EventStoreSettings(sqlite_path=folder / "tutorpulse.sqlite"),
        PrivacySettings(),
        LocalKms({"m1": bytes(range(KEY_BYTES))}),
    )
    yield FieldCipher(keys)
    keys.close()


@PROPERTY
@given(text=st.text(), centre=CENTRES, field=FIELDS)
def test_a_sealed_field_opens_to_its_text(
    cipher: FieldCipher, text: str, centre: str, field: str
) -> None:
    person = uuid4()
    sealed = cipher.encrypt(text, centre_id=centre, person_id=person, field=field)
    assert is_sealed(sealed)
    assert len(parse(sealed).ciphertext) == len(text.encode("utf-8")) + 16
    assert cipher.decrypt(sealed, centre_id=centre, person_id=person, field=field) == text


@PROPERTY
@given(text=st.text(min_size=1), position=st.integers(min_value=0), replacement=st.characters())
def test_a_changed_character_is_refused(
    cipher: FieldCipher, text: str, position: int, replacement: str
) -> None:
    person = uuid4()
    sealed = cipher.encrypt(text, centre_id="main-campus", person_id=person, field="text")
    at = position % len(sealed)
    changed = sealed[:at] + replacement + sealed[at + 1 :]
    if changed == sealed:
        return
    with pytest.raises(CiphertextError):
        cipher.decrypt(changed, centre_id="main-campus", person_id=person, field="text")


@PROPERTY
@given(text=st.text(), field=FIELDS, other_field=FIELDS)
def test_a_field_sealed_for_one_person_or_field_does_not_open_for_another(
    cipher: FieldCipher, text: str, field: str, other_field: str
) -> None:
    person, other = uuid4(), uuid4()
    sealed = cipher.encrypt(text, centre_id="main-campus", person_id=person, field=field)
    cipher.keys.get_or_create("main-campus", other)
    with pytest.raises(CiphertextError):
        cipher.decrypt(sealed, centre_id="main-campus", person_id=other, field=field)
    if other_field != field:
        with pytest.raises(TamperedCiphertext):
            cipher.decrypt(sealed, centre_id="main-campus", person_id=person, field=other_field)
    # The same person and key in another centre is another key row: refused as well.
    key = cipher.keys.get_or_create("main-campus", person)
    with pytest.raises(TamperedCiphertext):
        unseal(key, sealed, centre_id="north-campus", person_id=person, field=field)


@PROPERTY
@given(texts=st.lists(st.text(), max_size=4), note=st.one_of(st.none(), st.text()))
def test_after_erasure_every_field_of_the_person_reads_as_erased(
    cipher: FieldCipher, texts: list[str], note: str | None
) -> None:
    person, bystander = uuid4(), uuid4()
    where = {"centre_id": "main-campus", "field": "responses"}
    sealed = cipher.encrypt_texts(texts, person_id=person, **where)
    sealed_note = cipher.encrypt_optional(note, person_id=person, **where)
    kept = cipher.encrypt("still here", person_id=bystander, **where)
    assert cipher.decrypt_texts(sealed, person_id=person, **where) == tuple(texts)
    assert cipher.decrypt_optional(sealed_note, person_id=person, **where) == note

    cipher.keys.get_or_create("main-campus", person)
    cipher.keys.destroy("main-campus", person, erased_by=ADMIN, reason="parent's request")

    erased = cipher.decrypt_texts(sealed, person_id=person, **where)
    assert isinstance(erased, Erased) if texts else erased == ()
    if sealed_note is not None:
        assert isinstance(cipher.decrypt_optional(sealed_note, person_id=person, **where), Erased)
    assert cipher.decrypt(kept, person_id=bystander, **where) == "still here"


@PROPERTY
@given(answers=st.dictionaries(st.text(min_size=1, max_size=8), st.text(), min_size=2, max_size=5))
def test_answers_open_by_question_and_not_under_another_question(
    cipher: FieldCipher, answers: dict[str, str]
) -> None:
    person = uuid4()
    where = {"centre_id": "main-campus", "field": "answers"}
    sealed = cipher.encrypt_mapping(answers, person_id=person, **where)
    assert sealed.keys() == answers.keys()
    assert cipher.decrypt_mapping(sealed, person_id=person, **where) == answers
    first, second = list(sealed)[:2]
    swapped = {**sealed, first: sealed[second], second: sealed[first]}
    with pytest.raises(TamperedCiphertext):
        cipher.decrypt_mapping(swapped, person_id=person, **where)
    cipher.keys.destroy("main-campus", person, erased_by=ADMIN, reason="request")
    assert isinstance(cipher.decrypt_mapping(sealed, person_id=person, **where), Erased)
    assert cipher.decrypt_mapping({}, person_id=person, **where) == {}


def test_the_format_is_versioned_text_that_names_its_key() -> None:
    key_store_free = seal(
        _key("k1"), "Jane Doe", centre_id="main-campus", person_id=UUID(int=7), field="name"
    )
    version, key_id, nonce, body = key_store_free.split(".")
    assert (version, key_id) == ("pd1", "k1")
    assert all(c.isalnum() or c in "-_" for c in nonce + body)
    assert parse(key_store_free).nonce and len(parse(key_store_free).ciphertext) == 8 + 16
    for not_sealed in (
        "Jane Doe",
        "pd2.k1.AAAA.AAAA",
        "pd1.k1.!!!.AAAA",
        "pd1..AAAAAAAAAAAAAAAA.A",
    ):
        assert not is_sealed(not_sealed)
        with pytest.raises(MalformedCiphertext):
            parse(not_sealed)


def test_two_seals_of_one_text_differ() -> None:
    first = seal(_key("k1"), "Jane", centre_id="main-campus", person_id=UUID(int=7), field="name")
    again = seal(_key("k1"), "Jane", centre_id="main-campus", person_id=UUID(int=7), field="name")
    assert first != again


def _key(key_id: str) -> DataKey:
    return DataKey(key_id, bytes(KEY_BYTES))
