"""A document's version and bytes do not depend on the order in which competing replicas apply
the events of different aggregates, nor on a batch delivered again: each equals what one
application of the events in stream order gives."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast
from uuid import UUID, uuid4, uuid5

import pytest
from nats.aio.client import Client

from services.projections.service import ProjectionService
from shared import events as ev
from shared.readmodels import projector
from shared.readmodels.documents import TUTOR as TUTOR_DOC
from shared.readmodels.documents import Tutor
from shared.readmodels.projector import Batch, OutOfOrder, apply_all
from shared.readmodels.store import ReadStore
from tests.readside import read_store
from tests.support.out_of_order import SessionEnvelope, session_envelope
from tests.support.out_of_order import deliver as replay

CENTRE = "alpha"
AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TUTOR = uuid4()
FIRST, SECOND = uuid4(), uuid4()
SESSION = uuid4()


def _common(aggregate_id: UUID, version: int, minute: int, actor: UUID) -> SessionEnvelope:
    when = AT + timedelta(minutes=minute)
    return session_envelope(CENTRE, SESSION, aggregate_id, version, when, actor_id=actor)


def history() -> list[tuple[ev.Event, int]]:
    """One session in stream order: the scheduler's reminder falls between two enrolments, and
    the second student asks for help once the session started (an event of their seat, another
    aggregate than the session)."""
    seat = uuid5(SESSION, f"seat:{SECOND}")
    stream: list[ev.Event] = [
        ev.SessionScheduled(
            **_common(SESSION, 1, 0, TUTOR),
            title="Algebra clinic",
            tutor_id=TUTOR,
            starts_at=AT + timedelta(minutes=10),
            ends_at=AT + timedelta(minutes=70),
            time_zone="Australia/Sydney",
            mode=ev.SessionMode.ONLINE,
            meeting_link="https://meet.example.org/a",
        ),
        ev.StudentEnrolled(**_common(SESSION, 2, 1, TUTOR), student_id=FIRST, course_id="maths"),
        ev.SessionReminderSent(
            **_common(SESSION, 3, 2, TUTOR), starts_at=AT + timedelta(minutes=10), minutes_before=15
        ),
        ev.StudentEnrolled(**_common(SESSION, 4, 3, TUTOR), student_id=SECOND, course_id="maths"),
        ev.SessionStarted(**_common(SESSION, 5, 10, TUTOR)),
        ev.HelpRequestRaised(
            **_common(seat, 1, 12, SECOND),
            student_id=SECOND,
            help_request_id=uuid5(seat, "help-request:1"),
            priority=ev.HelpPriority.HIGH,
            sla_due_at=AT + timedelta(minutes=17),
        ),
    ]
    return [(event, number) for number, event in enumerate(stream, start=1)]


def deliver(store: ReadStore, batches: Sequence[Sequence[int]]) -> None:
    """Apply each batch as a projection replica does (one transaction, each event refused while
    an earlier one it needs is missing, then flushed); refused events come back in a later
    batch of their own, until every one is in."""
    replay(history(), batches, store.transaction)


def in_stream_order(tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    store = read_store(tmp_path, "reference.sqlite")
    apply_all(store, history())
    return store.dump(store.generation())


def test_a_seat_event_that_overtakes_its_students_enrolment_gives_the_same_documents(
    tmp_path: Path,
) -> None:
    # One replica holds the reminder, the second enrolment and the start while the first
    # enrolment is late; the other applies the second student's help request meanwhile.
    store = read_store(tmp_path)
    deliver(store, [[0], [2, 3, 4], [5], [1]])
    assert store.dump(store.generation()) == in_stream_order(tmp_path)


def test_a_batch_delivered_again_with_or_without_more_events_writes_nothing_again(
    tmp_path: Path,
) -> None:
    store = read_store(tmp_path)
    deliver(store, [[0, 1, 2, 3]])
    once = store.dump(store.generation())
    deliver(store, [[0, 1, 2, 3]])  # its acks were lost: every event recognised as applied
    assert store.dump(store.generation()) == once
    deliver(store, [[0, 1, 2, 3, 4, 5]])  # again, with the events after it
    deliver(store, [[2, 3, 4, 5]])
    assert store.dump(store.generation()) == in_stream_order(tmp_path)


def test_an_event_refused_after_it_changed_documents_leaves_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its changes cannot be taken out of the batch again: rather than flush them (or count
    them for the batch's next event), the replica applies the batch one event per transaction,
    where the refused event waits like any other and leaves nothing behind."""

    def refuses_late(docs: Batch, event: ev.Event) -> None:
        other = str(uuid4())
        docs.put(TUTOR_DOC, other, CENTRE, Tutor(tutor_id=other, centre_id=CENTRE))
        raise OutOfOrder("needs a document another aggregate has not made yet")

    expected = read_store(tmp_path, "expected.sqlite")
    deliver(expected, [[0, 1], [2]])
    store = read_store(tmp_path)
    deliver(store, [[0, 1]])
    raised: type[ev.Event] = ev.HelpRequestRaised
    monkeypatch.setitem(projector._HANDLERS, raised, refuses_late)
    service = ProjectionService(store, cast(Client, SimpleNamespace(jetstream=lambda: None)))
    events = history()
    # The help request is refused after it made a tutor's document; the reminder after it in
    # the batch applies.
    outcome = service._apply([events[5], events[2]])
    assert list(outcome.waiting) == [0] and outcome.applied == [1]
    assert store.dump(store.generation()) == expected.dump(expected.generation())
