"""A projection batch prefetches only documents its events then read (a tutor's document for
homework is read only when the homework enters, or leaves, their marking), a help event's
month of its tutor's help requests, a notification's audience (the centre, its staff, the
students' person documents, the inboxes told) and a catch-up's indexes with the rest, and a
document the prefetch misses is read when it is needed: the read models are the same, byte
for byte and version for version, whatever the prefetch read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pytest

from services.command.application import TutoringCentres
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.readmodels.documents import D, Kind
from shared.readmodels.projector import Batch, apply
from shared.readmodels.store import Found, Reads, ReadStore, Transaction
from shared.settings import load
from tests.bench.year import seed_year
from tests.readside import demo_events, read_store

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)

Items = tuple[tuple[ev.Event, int], ...]


@lru_cache(maxsize=1)
def year_events() -> Items:
    """A small year of one centre (sessions, seats, catch-ups, homework set, started, handed
    in, auto-marked and marked, reminders), as (event, notification id)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        settings = {"TUTORPULSE_SQLITE_PATH": str(Path(folder) / "events.sqlite")}
        centres = TutoringCentres(load(EventStoreSettings, settings))
        try:
            seed_year(centres, events=5_000, tutors=5, students=50, seed=7, now=NOW)
            notifications = centres.recorder.select_notifications(1, 1_000_000)
        finally:
            centres.close()
    return tuple((ev.decode(n.state), n.id) for n in notifications)


class Watched(Batch):
    """A batch that remembers the documents asked for since :meth:`forget`."""

    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx, before=False)
        self.asked: set[tuple[str, str]] = set()

    def forget(self) -> None:
        self.asked = set()

    def get(self, kind: Kind[D], key: str) -> D | None:
        self.asked.add((kind.name, key))
        return super().get(kind, key)


def _batches(items: Items, size: int) -> Iterator[Items]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(batch: Batch, items: Items) -> None:
    for event, notification_id in items:
        apply(batch, event, notification_id)
    batch.flush()


def _reads(tx: Transaction, monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """The documents ``tx`` reads from now on in steps (a prefetch's reads, and those on
    demand), by kind's name and key."""
    read: set[tuple[str, str]] = set()
    store_read = tx.read

    def reading(reads: Reads) -> Found:
        read.update((kind.name, key) for kind, keys in reads.docs.items() for key in keys)
        return store_read(reads)

    monkeypatch.setattr(tx, "read", reading)
    return read


def _prefetched(
    tx: Transaction, items: Items, monkeypatch: pytest.MonkeyPatch
) -> tuple[Watched, set[tuple[str, str]], set[tuple[str, str]]]:
    """A batch of ``items`` that the service would apply, prefetched; what the prefetch read,
    and what ``tx`` reads from then on (the prefetch's reads, then those on demand)."""
    read = _reads(tx, monkeypatch)
    batch = Watched(tx)
    batch.prefetch(event for event, _ in items)
    batch.forget()
    return batch, set(read), read


def _project(
    store: ReadStore, items: Items, size: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Apply ``items`` in batches of ``size`` as the projection service does; by kind, the
    documents each batch's prefetch read but none of its events asked for, those it read, and
    those read on demand."""
    unread: Counter[str] = Counter()
    prefetched: Counter[str] = Counter()
    on_demand: Counter[str] = Counter()
    for items_of_batch in _batches(items, size):
        with store.transaction() as tx:
            batch, read, reading = _prefetched(tx, items_of_batch, monkeypatch)
            _apply(batch, items_of_batch)
            unread.update(kind for kind, _ in read - batch.asked)
            prefetched.update(kind for kind, _ in read)
            on_demand.update(kind for kind, _ in reading - read)
    return unread, prefetched, on_demand


@pytest.mark.parametrize("history", ["demo", "year"])
@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_batch_prefetches_no_document_its_events_do_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str, size: int
) -> None:
    items = demo_events() if history == "demo" else year_events()
    store = read_store(tmp_path)
    unread, prefetched, on_demand = _project(store, items, size, monkeypatch)
    store.close()
    assert unread == Counter()
    assert prefetched["session"] and prefetched["student"] and prefetched["student_sessions"]
    # A help event's month of its tutor's help requests is read with the tutors, not alone.
    assert prefetched["help_requests"] and not on_demand["help_requests"]
    # A notification's audience and a catch-up's indexes too: one at a time, as at live rates,
    # only a tutor's first help request of a month reads (the month being new) its help index.
    # In a batch where a person registers before a notification, the notification's students
    # and inboxes are read when it is delivered.
    assert prefetched["centre"] and prefetched["centre_staff"]
    assert not on_demand["centre"] and not on_demand["centre_staff"]
    assert prefetched["open_catch_ups"] and not on_demand["open_catch_ups"]
    if size == 1:
        assert prefetched["person"] and set(on_demand) == {"help_index"}
    if history == "year":  # catch-ups started, finished and overdue, notifications delivered
        assert prefetched["catch_up"] and prefetched["closed_catch_ups"] and prefetched["inbox"]
        assert not on_demand["catch_up"] and not on_demand["closed_catch_ups"]
    if history == "year":  # homework of every step, some of it waiting for the tutor's mark
        kinds = Counter(type(event).__name__ for event, _ in items)
        assert kinds["HomeworkStarted"] and kinds["HomeworkGraded"] and kinds["HomeworkSubmitted"]
        assert prefetched["homework"] and prefetched["tutor"]


def _events_of_homework(items: Items) -> list[Sequence[tuple[ev.Event, int]]]:
    """Each event of homework that was handed in and marked by its tutor, in a batch of its
    own (the year's other events before it in one)."""
    first = next(
        i
        for i, (event, _) in enumerate(items)
        if isinstance(event, ev.HomeworkSubmitted) and event.status is ev.HomeworkStatus.SUBMITTED
    )
    homework_id = items[first][0].aggregate_id
    earlier = [item for item in items if item[0].aggregate_id != homework_id]
    own = [item for item in items if item[0].aggregate_id == homework_id]
    return [earlier, *([item] for item in own)]


def test_the_tutors_document_is_read_for_homework_entering_or_leaving_their_marking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = read_store(tmp_path)
    tutor_read: list[tuple[str, bool, bool]] = []
    """Each event's type, whether its prefetch read the tutor's document, and whether it
    asked for it."""
    batches = _events_of_homework(year_events())
    with store.transaction() as tx:
        _apply(Batch(tx), tuple(batches[0]))
    for items in batches[1:]:
        with store.transaction() as tx:
            batch, read, _ = _prefetched(tx, tuple(items), monkeypatch)
            _apply(batch, tuple(items))
            tutor_read.append(
                (
                    type(items[0][0]).__name__,
                    any(kind == "tutor" for kind, _ in read),
                    any(kind == "tutor" for kind, _ in batch.asked),
                )
            )
    store.close()
    assert tutor_read[:2] == [
        ("HomeworkAssigned", False, False),
        ("HomeworkStarted", False, False),
    ]
    assert ("HomeworkSubmitted", True, True) in tutor_read
    assert tutor_read[-1] == ("HomeworkGraded", True, True)
    assert all(prefetched == asked for _, prefetched, asked in tutor_read)


@pytest.mark.parametrize("size", [7, 64])
def test_what_a_prefetch_misses_is_read_when_needed_and_the_documents_are_the_same(
    tmp_path: Path, size: int
) -> None:
    items = year_events()
    dumps = []
    for name, prefetch in (("prefetched", True), ("on demand", False)):
        store = read_store(tmp_path, f"{name}.sqlite")
        for items_of_batch in _batches(items, size):
            with store.transaction() as tx:
                batch = Batch(tx, before=False)
                if prefetch:
                    batch.prefetch(event for event, _ in items_of_batch)
                _apply(batch, items_of_batch)
        dumps.append(store.dump(store.generation()))
        store.close()
    assert dumps[0] == dumps[1]
