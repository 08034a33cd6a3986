"""The erasure check behind every request's token: it remembers both answers, so a steady
stream of requests reads the key store once per person per ``seconds``; an erasure is seen
within ``seconds`` by another process and never forgotten; a key store that cannot be read is
said so, never taken for "not erased"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from shared.eventstore.settings import EventStoreSettings
from shared.privacy import DataKey, Erased, KeyStore, LocalKms, PrivacySettings
from shared.privacy.erasure import ErasureCheck, ErasureCheckUnavailable

ADMIN = UUID(int=1)
CENTRE = "main-campus"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingKeys(KeyStore):
    """A key store that counts its reads of the table, and can be made unreachable."""

    reads = 0
    down = False

    def fetch(self, centre_id: str, person_id: UUID) -> DataKey | Erased | None:
        if self.down:
            raise OSError("connection refused")
        self.reads += 1
        return super().fetch(centre_id, person_id)


@pytest.fixture
def settings(tmp_path: Path) -> EventStoreSettings:
    return EventStoreSettings(sqlite_path=tmp_path / "tutorpulse.sqlite")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(settings: EventStoreSettings, clock: Clock) -> Iterator[CountingKeys]:
    store = CountingKeys(settings, PrivacySettings(), LocalKms({"m1": b"1" * 32}), clock=clock)
    yield store
    store.close()


def test_not_erased_is_remembered_for_the_seconds_then_read_again(
    keys: CountingKeys, clock: Clock
) -> None:
    check = ErasureCheck(keys, seconds=5, clock=clock)
    staff, student = uuid4(), uuid4()
    keys.get_or_create(CENTRE, student)
    for _ in range(100):
        assert not check.erased(CENTRE, staff)  # never had a key
        assert not check.erased(CENTRE, student)
    assert keys.reads == 2
    clock.now = 4.9
    assert not check.erased(CENTRE, staff)
    assert keys.reads == 2
    clock.now = 5.0
    assert not check.erased(CENTRE, staff)
    assert keys.reads == 3


def test_another_process_erasure_is_seen_within_the_seconds_and_kept(
    settings: EventStoreSettings, keys: CountingKeys, clock: Clock
) -> None:
    check = ErasureCheck(keys, seconds=5, clock=clock)
    student = uuid4()
    keys.get_or_create(CENTRE, student)
    assert not check.erased(CENTRE, student)
    other = KeyStore(settings, PrivacySettings(), LocalKms({"m1": b"1" * 32}))
    try:
        other.destroy(CENTRE, student, erased_by=ADMIN, reason="parent's request")
    finally:
        other.close()
    assert not check.erased(CENTRE, student)  # still within the seconds
    clock.now = 5.0  # the check's and the key store's kept answers both run out
    assert check.erased(CENTRE, student)
    reads = keys.reads
    clock.now = 10_000.0
    assert check.erased(CENTRE, student)
    assert keys.reads == reads
    assert not check.erased("north-campus", student)


def test_the_erasing_process_knows_at_once(keys: CountingKeys) -> None:
    check = ErasureCheck(keys, seconds=60)
    student = uuid4()
    assert not check.erased(CENTRE, student)
    keys.destroy(CENTRE, student, erased_by=ADMIN, reason="request")
    check.note_erased(CENTRE, student)
    assert check.erased(CENTRE, student)


def test_at_most_size_people_are_kept(keys: CountingKeys) -> None:
    check = ErasureCheck(keys, seconds=60, size=3)
    people = [uuid4() for _ in range(5)]
    for person in people:
        check.erased(CENTRE, person)
    assert len(check) == 3
    reads = keys.reads
    check.erased(CENTRE, people[-1])
    assert keys.reads == reads
    check.erased(CENTRE, people[0])
    assert keys.reads == reads + 1


def test_a_key_store_that_cannot_be_read_is_said_so(keys: CountingKeys, clock: Clock) -> None:
    check = ErasureCheck(keys, seconds=5, clock=clock)
    known, unknown = uuid4(), uuid4()
    assert not check.erased(CENTRE, known)
    keys.down = True
    assert not check.erased(CENTRE, known)  # remembered: no read needed
    with pytest.raises(ErasureCheckUnavailable):
        check.erased(CENTRE, unknown)
    clock.now = 5.0
    with pytest.raises(ErasureCheckUnavailable):
        check.erased(CENTRE, known)


def test_known_tells_what_is_remembered_without_reading(keys: CountingKeys, clock: Clock) -> None:
    check = ErasureCheck(keys, seconds=5, clock=clock)
    staff, student = uuid4(), uuid4()
    assert check.known(CENTRE, staff) is None
    check.erased(CENTRE, staff)
    assert check.known(CENTRE, staff) is False
    keys.destroy(CENTRE, student, erased_by=ADMIN, reason="request")
    check.erased(CENTRE, student)
    reads = keys.reads
    clock.now = 5.0
    assert check.known(CENTRE, staff) is None
    assert check.known(CENTRE, student) is True
    assert keys.reads == reads
