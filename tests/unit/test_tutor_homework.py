"""A tutor's document holds the homework handed in that waits for their mark (``SUBMITTED``,
what My Day lists to grade), not every homework they set until it is graded: homework never
handed in no longer piles up in it over the years. My Day shows the same, byte for byte, as
from a document that holds all of it (as an earlier release wrote it), homework handed in
long after it was set included; a document of the earlier release is read as before and
trimmed when it is written again; and the tutor's documents are the same, version and bytes,
in whatever interleaving and batches the events are applied."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.command.application import TutoringCentres
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.readmodels import access
from shared.readmodels.documents import TUTOR, HomeworkSummary, Tutor, encode
from shared.readmodels.projector import Batch, apply_all
from shared.readmodels.projector import homework as homework_projector
from shared.readmodels.projector import tutor as tutor_projector
from shared.readmodels.store import MemoryTransaction, ReadStore
from shared.settings import load
from shared.tenancy import Actor, Role
from tests.bench.year import YearOfHistory, seed_year
from tests.readside import read_store
from tests.support.out_of_order import Item
from tests.support.out_of_order import deliver as replay
from tests.unit.test_student_history_order import replica_batches

NOW = datetime(2026, 4, 22, 15, 30, tzinfo=UTC)
LATE = uuid5(UUID(int=12), "homework handed in long after it was set")
TIMES = (NOW - timedelta(days=3), NOW, NOW + timedelta(hours=5), NOW + timedelta(days=9))


def until_graded(
    docs: Batch, centre_id: str, summary: HomeworkSummary, before: ev.HomeworkStatus | None
) -> None:
    """The earlier release's rule: every homework the tutor set, until it is graded, written
    at each of its events."""
    tutor = docs.get(TUTOR, summary.teacher_id) or Tutor(
        tutor_id=summary.teacher_id, centre_id=centre_id
    )
    tutor.homework.pop(summary.homework_id, None)
    if summary.status is not ev.HomeworkStatus.GRADED:
        tutor.homework[summary.homework_id] = summary
    docs.put(TUTOR, summary.teacher_id, centre_id, tutor)


def _late_homework(year: YearOfHistory) -> list[ev.Event]:
    """Homework set 120 days ago, recorded overdue, and handed in an hour ago."""
    tutor, student = year.tutor.user_id, year.student.user_id
    set_at, due = NOW - timedelta(days=120), NOW - timedelta(days=113)
    centre = year.centre_id
    return [
        ev.HomeworkAssigned(
            centre_id=centre,
            aggregate_id=LATE,
            aggregate_version=1,
            occurred_at=set_at,
            actor_id=tutor,
            actor_role=Role.TEACHER,
            student_id=student,
            teacher_id=tutor,
            title="Long division",
            exercise_ids=(uuid5(LATE, "exercise"),),
            max_score=10,
            due_at=due,
        ),
        ev.HomeworkBecameOverdue(
            centre_id=centre,
            aggregate_id=LATE,
            aggregate_version=2,
            occurred_at=due,
            actor_id=tutor,
            actor_role=Role.CENTER_ADMIN,
            homework_id=LATE,
            student_id=student,
            due_at=due,
        ),
        ev.HomeworkSubmitted(
            centre_id=centre,
            aggregate_id=LATE,
            aggregate_version=3,
            occurred_at=NOW - timedelta(hours=1),
            actor_id=student,
            actor_role=Role.STUDENT,
            student_id=student,
            teacher_id=tutor,
            answers={str(uuid5(LATE, "exercise")): {"q1": "12"}},
            on_time=False,
            status=ev.HomeworkStatus.SUBMITTED,
            max_score=10,
        ),
    ]


@dataclass
class History:
    year: YearOfHistory
    items: list[Item]
    folder: Path

    def tutors(self) -> list[Actor]:
        return [
            Actor(user_id=t, role=Role.TEACHER, centre_id=self.year.centre_id)
            for t in self.year.tutor_ids
        ]

    def projected(self, name: str, items: list[Item] | None = None) -> ReadStore:
        store = read_store(self.folder, name)
        apply_all(store, self.items if items is None else items)
        return store

    def as_before(self, name: str, items: list[Item] | None = None) -> ReadStore:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(homework_projector, "homework_to_mark", until_graded)
            patch.setattr(tutor_projector, "trimmed", lambda tutor: tutor)
            return self.projected(name, items)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    folder: Path = tmp_path_factory.mktemp("tutor-homework")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    try:
        year = seed_year(centres, events=4_000, tutors=2, students=10, seed=11, now=NOW)
        stored = centres.recorder.select_notifications(1, 1_000_000)
    finally:
        centres.close()
    seeded = [ev.decode(n.state) for n in stored]
    events = [*seeded, *_late_homework(year)]
    yield History(year, [(e, n) for n, e in enumerate(events, start=1)], folder)


def _days(store: ReadStore, tutors: list[Actor]) -> list[bytes]:
    """Every tutor's My Day at each of ``TIMES``, as JSON."""
    return [
        msgspec.json.encode(access.my_day(store, tutor, None, at).data)
        for at in TIMES
        for tutor in tutors
    ]


def test_the_document_keeps_homework_to_mark_and_my_day_shows_the_same(
    history: History,
) -> None:
    now, before = history.projected("now.sqlite"), history.as_before("before.sqlite")
    kept = {d.key: d.doc for d in now.docs(TUTOR)}
    held = {d.key: d.doc for d in before.docs(TUTOR)}
    assert set(kept) == set(held)
    for key, tutor in kept.items():
        waiting = {
            k: h for k, h in held[key].homework.items() if h.status is ev.HomeworkStatus.SUBMITTED
        }
        assert tutor.homework == waiting, key
        assert encode(tutor) == encode(msgspec.structs.replace(held[key], homework=waiting))
    never_handed_in = [
        h for t in held.values() for h in t.homework.values() if h.status in ev.OPEN_HOMEWORK
    ]
    assert never_handed_in  # the earlier documents held them; these do not
    assert _days(now, history.tutors()) == _days(before, history.tutors())
    shown = access.my_day(now, history.year.tutor, None, NOW).data["toGrade"]
    late = next(w for w in shown if w.get("homeworkId") == str(LATE))
    assert late["assignedAt"] < (NOW - timedelta(days=100)).isoformat()
    assert late["studentName"] is not None
    now.close()
    before.close()


def test_a_document_of_the_earlier_release_is_read_as_before_and_trimmed_when_written(
    history: History,
) -> None:
    """Written with every homework until graded, the tutor's document answers My Day as one
    written now; the events that follow write it as a rebuild would (the versions of an
    earlier release's documents are its own)."""
    cut = len(history.items) - 400
    earlier = history.as_before("earlier.sqlite", history.items[:cut])
    halfway = history.projected("halfway.sqlite", history.items[:cut])
    assert any(
        h.status is not ev.HomeworkStatus.SUBMITTED
        for d in earlier.docs(TUTOR)
        for h in d.doc.homework.values()
    )
    assert _days(earlier, history.tutors()) == _days(halfway, history.tutors())
    apply_all(earlier, history.items[cut:])
    whole = history.projected("whole.sqlite")
    assert {d.key: encode(d.doc) for d in earlier.docs(TUTOR)} == {
        d.key: encode(d.doc) for d in whole.docs(TUTOR)
    }
    assert _days(earlier, history.tutors()) == _days(whole, history.tutors())
    for store in (earlier, halfway, whole):
        store.close()


def _tutors(tx: MemoryTransaction) -> dict[str, tuple[int, str]]:
    return {
        key: (stored.version, encode(stored.doc))
        for (kind, key), stored in tx.docs.items()
        if kind == TUTOR.name
    }


def _deliver(items: list[Item], batches: list[list[int]]) -> MemoryTransaction:
    tx = MemoryTransaction()
    replay(items, batches, lambda: nullcontext(tx))
    return tx


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rnd=st.randoms(use_true_random=False), again=st.floats(0, 1), later=st.booleans())
def test_any_interleaving_and_a_batch_delivered_again_give_the_same_tutor_documents(
    history: History, rnd: random.Random, again: float, later: bool
) -> None:
    items = history.items
    in_order = _tutors(_deliver(items, [list(range(len(items)))]))
    assert _tutors(_deliver(items, replica_batches(items, rnd, again, later))) == in_order
