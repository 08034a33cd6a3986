"""Field encryption: a sealed text opens only in its own centre, with its own person's key; any
change to it is refused; after the person's key is destroyed it reads as erased, wherever it
was copied to (an answer's JSON, a sentence of a notification)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import msgspec
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
    Revealer,
    TamperedCiphertext,
    is_sealed,
    seal,
    unseal,
)
from shared.privacy.cipher import parse
from shared.privacy.kms import KEY_BYTES
from shared.privacy.reveal import ERASED, UNREADABLE

ADMIN = UUID(int=1)
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
@given(text=st.text(), centre=CENTRES)
def test_a_sealed_text_opens_to_its_text(cipher: FieldCipher, text: str, centre: str) -> None:
    person = uuid4()
    sealed = cipher.encrypt(text, centre_id=centre, person_id=person)
    assert is_sealed(sealed)
    assert parse(sealed).person_id == person
    assert len(parse(sealed).ciphertext) == len(text.encode("utf-8")) + 16
    assert cipher.decrypt(sealed, centre_id=centre) == text


@PROPERTY
@given(text=st.text(min_size=1), position=st.integers(min_value=0), replacement=st.characters())
def test_a_changed_character_is_refused(
    cipher: FieldCipher, text: str, position: int, replacement: str
) -> None:
    sealed = cipher.encrypt(text, centre_id="main-campus", person_id=uuid4())
    at = position % len(sealed)
    changed = sealed[:at] + replacement + sealed[at + 1 :]
    if changed == sealed:
        return
    with pytest.raises(CiphertextError):
        cipher.decrypt(changed, centre_id="main-campus")


@PROPERTY
@given(text=st.text())
def test_a_text_sealed_for_one_person_or_centre_does_not_open_for_another(
    cipher: FieldCipher, text: str
) -> None:
    person, other = uuid4(), uuid4()
    sealed = cipher.encrypt(text, centre_id="main-campus", person_id=person)
    other_key = cipher.keys.get_or_create("main-campus", other)
    # Naming another person in the text does not make it theirs.
    with pytest.raises(CiphertextError):
        unseal(other_key, sealed, centre_id="main-campus")
    renamed = seal(other_key, "x", centre_id="main-campus", person_id=other).split(".")
    parts = sealed.split(".")
    with pytest.raises(CiphertextError):
        cipher.decrypt(".".join([parts[0], renamed[1], *parts[2:]]), centre_id="main-campus")
    # The same person and key read in another centre: refused as well.
    key = cipher.keys.get_or_create("main-campus", person)
    with pytest.raises(TamperedCiphertext):
        unseal(key, sealed, centre_id="north-campus")


@PROPERTY
@given(texts=st.lists(st.text(), max_size=4))
def test_after_erasure_every_text_of_the_person_reads_as_erased(
    cipher: FieldCipher, texts: list[str]
) -> None:
    person, bystander = uuid4(), uuid4()
    sealed = [cipher.encrypt(text, centre_id="main-campus", person_id=person) for text in texts]
    kept = cipher.encrypt("still here", centre_id="main-campus", person_id=bystander)
    assert [cipher.decrypt(value, centre_id="main-campus") for value in sealed] == texts

    cipher.keys.get_or_create("main-campus", person)
    cipher.keys.destroy("main-campus", person, erased_by=ADMIN, reason="parent's request")

    assert all(isinstance(cipher.decrypt(v, centre_id="main-campus"), Erased) for v in sealed)
    assert cipher.decrypt(kept, centre_id="main-campus") == "still here"


@PROPERTY
@given(name=st.text(), note=st.text())
def test_an_answer_opens_every_sealed_text_in_it_for_its_own_centre_only(
    cipher: FieldCipher, name: str, note: str
) -> None:
    person, other = uuid4(), uuid4()
    sealed_name = cipher.encrypt(name, centre_id="main-campus", person_id=person)
    sealed_note = cipher.encrypt(note, centre_id="main-campus", person_id=other)
    title = f"{sealed_name} asked for help: {sealed_note}!"
    answer = {"student": {"name": sealed_name}, "notes": [sealed_note, "plain"], "title": title}
    revealer = Revealer(cipher.keys)
    opened = msgspec.json.decode(revealer.json(msgspec.json.encode(answer), "main-campus"))
    assert opened == {
        "student": {"name": name},
        "notes": [note, "plain"],
        "title": f"{name} asked for help: {note}!",
    }
    elsewhere = msgspec.json.decode(revealer.json(msgspec.json.encode(answer), "north-campus"))
    assert elsewhere["student"]["name"] == UNREADABLE
    assert elsewhere["title"] == f"{UNREADABLE} asked for help: {UNREADABLE}!"

    cipher.keys.destroy("main-campus", person, erased_by=ADMIN, reason="request")
    after = msgspec.json.decode(revealer.json(msgspec.json.encode(answer), "main-campus"))
    assert after["student"]["name"] == ERASED
    assert after["notes"] == [note, "plain"]
    assert revealer.text(title, "main-campus") == f"{ERASED} asked for help: {note}!"


def test_the_format_is_versioned_text_that_names_its_person_and_key() -> None:
    key_store_free = seal(
        _key("0123456789ab"), "Jane Doe", centre_id="main-campus", person_id=UUID(int=7)
    )
    version, person, key_id, nonce, body = key_store_free.split(".")
    assert (version, key_id) == ("pd1", "0123456789ab")
    assert parse(key_store_free).person_id == UUID(int=7)
    assert all(c.isalnum() or c in "-_" for c in person + nonce + body)
    assert parse(key_store_free).nonce and len(parse(key_store_free).ciphertext) == 8 + 16
    for not_sealed in (
        "Jane Doe",
        "pd2.AAAAAAAAAAAAAAAAAAAAAA.0123456789ab.AAAA.AAAA",
        "pd1.AAAAAAAAAAAAAAAAAAAAAA.0123456789ab.!!!.AAAA",
        "pd1.AAAAAAAAAAAAAAAAAAAAAA..AAAAAAAAAAAAAAAA.A",
        "pd1.AAAA.0123456789ab.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
    ):
        assert not is_sealed(not_sealed)
        with pytest.raises(MalformedCiphertext):
            parse(not_sealed)


def test_two_seals_of_one_text_differ() -> None:
    first = seal(_key("0123456789ab"), "Jane", centre_id="main-campus", person_id=UUID(int=7))
    again = seal(_key("0123456789ab"), "Jane", centre_id="main-campus", person_id=UUID(int=7))
    assert first != again


def _key(key_id: str) -> DataKey:
    return DataKey(key_id, bytes(KEY_BYTES))
