"""``python -m services.migrate privacy`` on an event store written before personal data was
sealed (tests/fixtures/pre_sealing: made by the command service of that time): afterwards no
personal text is in the file's bytes, every event decodes at its old place, read models
rebuilt from it show (once opened) what the old store's read models showed, and running it
again changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.migrate.migration import seal_the_past
from services.migrate.privacy import reseal
from services.migrate.settings import MigrateSettings
from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.privacy import ERASED, FieldCipher, KeyStore, Revealer, is_sealed, new_master_key
from shared.privacy.fields import seal_event
from shared.privacy.keys import open_key_store
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.settings import load
from tests.readside import read_store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_sealing" / "events.sqlite"
NAME = "Zephyrine Okonkwo-Blake"
EMAIL = "zephyrine.ob@example.org"
NOTE = "Zephyrine told me her family is moving to Perth after the custody hearing"
HELP = "Zephyrine cannot see the board from the back row"
MASTER = f"m1={new_master_key()}"


class Collect:
    """Seals nothing: collects every personal text ``seal_event`` is asked to seal."""

    def __init__(self) -> None:
        self.texts: set[str] = set()

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID) -> str:
        self.texts.add(text)
        return text


@pytest.fixture
def settings(tmp_path: Path) -> MigrateSettings:
    shutil.copy(FIXTURE, tmp_path / "events.sqlite")
    return load(
        MigrateSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
            "TUTORPULSE_READ_STORE": "sqlite",
            "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
            "TUTORPULSE_PRIVACY_MASTER_KEYS": MASTER,
        },
    )


@pytest.fixture
def keys(settings: MigrateSettings) -> Iterator[KeyStore]:
    store = open_key_store("test", settings.event_store, settings.privacy, dev_mode=False)
    yield store
    store.close()


def stored(settings: EventStoreSettings) -> list[tuple[int, str, int, str, bytes]]:
    store = EventStore(settings)
    try:
        return [
            (n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
            for n in store.recorder.select_notifications(1, 1_000_000)
        ]
    finally:
        store.close()


def personal_texts(rows: list[tuple[int, str, int, str, bytes]]) -> set[str]:
    collect = Collect()
    for *_, topic, state in rows:
        seal_event(events.decode(state, topic), collect)
    return collect.texts


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def projected(folder: Path, name: str, rows: list[tuple[int, str, int, str, bytes]]) -> ReadStore:
    store = read_store(folder, name)
    apply_all(store, [(events.decode(state, topic), n) for n, _, _, topic, state in rows])
    return store


def opened(store: ReadStore, revealer: Revealer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's read models, each sealed text in it opened."""

    def open_value(value: Any, centre: str) -> Any:
        if isinstance(value, str) and "pd1." in value:
            return revealer.json(value.encode(), centre).decode()
        return value

    dump = store.dump(store.generation())
    return {
        "rm_docs": [
            tuple(open_value(v, row[2]) for v in row) for row in dump["rm_docs"]
        ],  # (kind, key, centre, version, doc)
        "rm_log": [tuple(open_value(v, row[3]) for v in row) for row in dump["rm_log"]],
        "rm_versions": dump["rm_versions"],
    }


def test_the_fixture_holds_plain_personal_texts() -> None:
    data = FIXTURE.read_bytes()
    for text in (NAME, EMAIL, NOTE, HELP):
        assert text.encode() in data


def test_after_it_no_personal_text_is_in_the_file_and_every_event_is_in_its_place(
    settings: MigrateSettings, keys: KeyStore, tmp_path: Path
) -> None:
    path = settings.event_store.sqlite_path
    before = stored(settings.event_store)
    texts = personal_texts(before)
    assert {NAME, EMAIL, NOTE, HELP} <= texts
    old = projected(tmp_path, "old.sqlite", before)

    seal_the_past(settings)

    after = stored(settings.event_store)
    assert [row[:4] for row in after] == [row[:4] for row in before]  # ids, versions, types
    data = file_bytes(path)
    long_enough = {t for t in texts if len(t) >= 8}  # "3", an answer, is in any file
    assert len(long_enough) > 20
    for text in long_enough:
        assert text.encode() not in data, text
    assert personal_texts(after) == set()  # every one sealed: nothing left to seal
    rewritten = [a for a, b in zip(after, before, strict=True) if a[4] != b[4]]
    assert {row[3] for row in rewritten} >= {"PersonRegistered", "TutorNoteWritten"}
    for *_, topic, state in after:
        events.decode(state, topic)

    revealer = Revealer(keys)
    new = projected(tmp_path, "new.sqlite", after)
    assert opened(new, revealer) == old.dump(old.generation())
    assert NAME.encode() not in file_bytes(tmp_path / "new.sqlite")
    old.close()
    new.close()


def test_running_it_again_changes_nothing_and_an_erased_person_reads_erased(
    settings: MigrateSettings, keys: KeyStore, tmp_path: Path
) -> None:
    seal_the_past(settings)
    once = stored(settings.event_store)
    store = EventStore(settings.event_store)
    try:
        again = reseal(store, FieldCipher(keys))
    finally:
        store.close()
    assert (again.rewritten, again.snapshots) == (0, 0)
    assert stored(settings.event_store) == once

    revealer = Revealer(keys)
    people = [
        event
        for *_, topic, state in once
        if isinstance(event := events.decode(state, topic), events.PersonRegistered)
    ]
    (her,) = [p for p in people if revealer.text(p.name, p.centre_id) == NAME]
    assert is_sealed(her.name) and is_sealed(her.email)
    keys.destroy(her.centre_id, her.aggregate_id, erased_by=UUID(int=1), reason="request 17")
    assert revealer.text(her.name, her.centre_id) == ERASED
    others = [p for p in people if p is not her]
    assert all(revealer.text(p.name, p.centre_id) != ERASED for p in others)
