"""Read models are exactly-once and order-safe, and a rebuild equals the live projection."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.rebuild import rebuild
from shared.eventstore import EventStoreSettings
from shared.readmodels.documents import (
    STUDENT,
    STUDENT_ALERTS,
    Student,
    StudentAlerts,
)
from shared.readmodels.projector import Batch, OutOfOrder, apply, apply_all
from shared.readmodels.store import ReadStore, Transaction
from shared.readmodels.views.risk import alert_inputs
from shared.settings import load
from tests.readside import demo_events, read_store
from tests.unit.test_risk import homework

_reference: dict[str, list[tuple[object, ...]]] = {}


def projected_in_order(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    if not _reference:
        store = read_store(folder, "reference.sqlite")
        apply_all(store, demo_events())
        _reference.update(store.dump(store.generation()))
    return _reference


def test_every_event_delivered_twice_gives_the_same_read_models(tmp_path: Path) -> None:
    once = projected_in_order(tmp_path)
    store = read_store(tmp_path)
    for item in demo_events():
        apply_all(store, [item, item])
    apply_all(store, demo_events())  # and the whole history redelivered after a restart
    assert store.dump(store.generation()) == once


def test_an_event_that_overtakes_its_predecessor_waits(tmp_path: Path) -> None:
    store = read_store(tmp_path)
    history = list(demo_events())
    first_of_session = next(
        i for i, (e, _) in enumerate(history) if e.type_name == "SessionScheduled"
    )
    later = next(
        i
        for i, (e, _) in enumerate(history)
        if e.aggregate_id == history[first_of_session][0].aggregate_id and i > first_of_session
    )
    with pytest.raises(OutOfOrder), store.transaction() as tx:
        apply(Batch(tx), *history[later])


def _compete(store: ReadStore, order: list[int], replicas: int, seed: int) -> None:
    """Deliver events to ``replicas`` consumers in a scrambled order, redelivering refusals."""
    history = list(demo_events())
    pending = deque(order)
    rng = random.Random(seed)
    while pending:
        take = [pending.popleft() for _ in range(min(len(pending), rng.randint(1, replicas * 3)))]
        with store.transaction() as tx:
            batch = Batch(tx)
            for index in take:
                try:
                    apply(batch, *history[index])
                except OutOfOrder:
                    pending.append(index)
            batch.flush()


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=4))
def test_competing_consumers_in_any_order_produce_the_same_read_models(
    tmp_path_factory: pytest.TempPathFactory, rnd: random.Random, replicas: int
) -> None:
    folder = tmp_path_factory.mktemp("compete")
    expected = projected_in_order(folder)
    order = list(range(len(demo_events())))
    # Stream order with local disorder, as competing replicas produce it.
    for i in range(len(order) - 1):
        if rnd.random() < 0.3:
            j = min(len(order) - 1, i + rnd.randint(1, 6))
            order[i], order[j] = order[j], order[i]
    store = read_store(folder, "competing.sqlite")
    _compete(store, order, replicas, rnd.randint(0, 10**6))
    assert store.dump(store.generation()) == expected


def test_a_rebuild_from_the_event_store_equals_the_live_read_models(tmp_path: Path) -> None:
    from services.command.application import TutoringCentres
    from services.command.seed import seed
    from shared import events

    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    seed(centres)
    store = read_store(tmp_path)
    live = store.ensure_ready()
    notifications = centres.recorder.select_notifications(1, 1_000_000)
    apply_all(store, [(events.decode(n.state), n.id) for n in notifications])
    store.advance_watermark(notifications[-1].id)

    result = rebuild(centres, store, keep_old=True, settle_timeout=0)
    assert store.generation() == result.generation != live
    assert store.dump(result.generation) == store.dump(live)
    assert result.events == len(notifications)
    second = rebuild(centres, store, settle_timeout=0)
    assert second.replaced == result.generation
    with pytest.raises(Exception, match="no such table"):  # the replaced tables are gone
        store.dump(result.generation)
    centres.close()


def test_a_batch_that_loses_a_deadlock_is_retried_later_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL aborts one of two deadlocked transactions: its events are NAK'd to be tried
    again, and are never counted towards the dead-letter stream."""
    from contextlib import contextmanager
    from unittest.mock import MagicMock

    from services.projections.service import ProjectionService

    class Deadlock(Exception):
        pass

    store = read_store(tmp_path)
    calls = {"n": 0}
    real_transaction = store.transaction

    @contextmanager
    def losing_transaction(
        generation: int | None = None, *, trust: bool = False
    ) -> Iterator[Transaction]:
        calls["n"] += 1
        if calls["n"] <= 2:  # the batch, then the first event on its own
            raise Deadlock("deadlock detected")
        with real_transaction(generation, trust=trust) as tx:
            yield tx

    monkeypatch.setattr(store, "transaction", losing_transaction)
    store.transient_errors = (Deadlock,)
    service = ProjectionService(store, MagicMock())
    first, second = demo_events()[:2]
    outcome = service._apply([first, second])
    assert outcome.retry == {0: "Deadlock: deadlock detected"}
    assert (outcome.applied, outcome.failed) == ([1], {})


def test_a_derived_document_is_worked_out_once_from_what_the_batch_leaves(tmp_path: Path) -> None:
    """A student refreshed by every event of a batch has their alerts worked out once, at the
    flush, from the document as the last event left it; a read in between sees them as they
    are then. The alerts' version still counts every event that changed the student."""
    store = read_store(tmp_path)
    student = Student(student_id="s-1", centre_id="c-1")
    worked_out: list[int] = []

    def alerts() -> StudentAlerts:
        worked_out.append(len(student.homework))
        return alert_inputs(student)

    with store.transaction() as tx:
        batch = Batch(tx)
        for n in range(1, 4):
            student.homework[f"h{n}"] = homework(n, due_in=timedelta(days=n))
            batch.put(STUDENT, "s-1", "c-1", student)
            batch.put_derived(STUDENT_ALERTS, "s-1", "c-1", alerts)
            batch.applied(f"homework-{n}", 1)
            if n == 2:
                seen = batch.get(STUDENT_ALERTS, "s-1")
                assert seen is not None and len(seen.open_homework) == 2
        batch.flush()

    assert worked_out == [2, 3]
    stored = store.get(STUDENT_ALERTS, "s-1")
    assert stored is not None and stored.version == 3
    assert [h.homework_id for h in stored.doc.open_homework] == ["h1", "h2", "h3"]
