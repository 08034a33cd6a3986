"""A student's documents (``student``, ``student_risk`` and their ``student_sessions`` months)
are a function of the set of events applied: the same events applied in any interleaving of
their aggregates (each aggregate's in order), in batches of any size, with a batch delivered
again as after a kill -9, give every one of them the bytes and the version of one application
in stream order. So the live read models equal a rebuild's."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4, uuid5

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.command.application import TutoringCentres
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.readmodels.documents import (
    STUDENT,
    STUDENT_ALERTS,
    STUDENT_SESSIONS,
    Student,
    StudentHistory,
    StudentSession,
    encode,
    month_of,
    student_history_key,
)
from shared.readmodels.projector import Batch, apply
from shared.readmodels.store import MemoryTransaction, StoredDoc
from shared.settings import load
from tests.bench.year import seed_year
from tests.support.out_of_order import Item, SessionEnvelope, session_envelope
from tests.support.out_of_order import deliver as replay

Snapshot = dict[tuple[str, str], tuple[int, str]]

_KINDS = (STUDENT.name, STUDENT_ALERTS.name, STUDENT_SESSIONS.name)
NOW = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)
CENTRE = "hand"
TUTOR = uuid4()
FIRST, SECOND = uuid4(), uuid4()
MOVED, OPEN = uuid4(), uuid4()
"""A session rescheduled from January to February after its students were enrolled (and
after the first one was set an exercise), and one of March whose help request stays open."""


def _at(session: UUID, aggregate: UUID, version: int, when: datetime) -> SessionEnvelope:
    return session_envelope(CENTRE, session, aggregate, version, when, actor_id=TUTOR)


def _seat(session: UUID, student: UUID) -> UUID:
    return uuid5(session, f"seat:{student}")


def handmade() -> list[ev.Event]:
    """Events of the two sessions, in stream order."""
    jan = datetime(2026, 1, 30, 17, 0, tzinfo=UTC)
    feb = datetime(2026, 2, 2, 17, 0, tzinfo=UTC)
    march = datetime(2026, 3, 18, 17, 0, tzinfo=UTC)
    work = uuid5(MOVED, "work")
    first = _seat(MOVED, FIRST)
    second = _seat(MOVED, SECOND)
    opened = _seat(OPEN, FIRST)
    stream: list[ev.Event] = []
    for session, start in ((MOVED, jan), (OPEN, march)):
        stream.append(
            ev.SessionScheduled(
                **_at(session, session, 1, start - timedelta(days=20)),
                title=f"Algebra {start:%B}",
                tutor_id=TUTOR,
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                time_zone="UTC",
                mode=ev.SessionMode.ONLINE,
                meeting_link="https://meet.example.org/a",
            )
        )
    stream += [
        ev.StudentEnrolled(
            **_at(MOVED, MOVED, 2, jan - timedelta(days=19)), student_id=FIRST, course_id="maths"
        ),
        ev.StudentEnrolled(
            **_at(MOVED, MOVED, 3, jan - timedelta(days=19)), student_id=SECOND, course_id="maths"
        ),
        ev.ExerciseAssigned(
            **_at(MOVED, first, 1, jan - timedelta(days=18)),
            student_id=FIRST,
            work_id=work,
            exercise_id=uuid5(work, "exercise"),
            title="Fractions",
            exercise_type=ev.ExerciseType.NUMERICAL,
            difficulty=ev.Difficulty.EASY,
            max_score=10,
            auto_gradable=True,
        ),
        ev.SessionRescheduled(
            **_at(MOVED, MOVED, 4, jan - timedelta(days=10)),
            starts_at=feb,
            ends_at=feb + timedelta(hours=1),
        ),
        ev.StudentEnrolled(
            **_at(OPEN, OPEN, 2, march - timedelta(days=5)), student_id=FIRST, course_id="maths"
        ),
        ev.SessionStarted(**_at(MOVED, MOVED, 5, feb)),
        ev.AttendanceMarked(
            **_at(MOVED, first, 2, feb), student_id=FIRST, status=ev.AttendanceStatus.PRESENT
        ),
        ev.AttendanceMarked(
            **_at(MOVED, second, 1, feb), student_id=SECOND, status=ev.AttendanceStatus.ABSENT
        ),
        ev.ExerciseSubmitted(
            **_at(MOVED, first, 3, feb + timedelta(minutes=30)),
            student_id=FIRST,
            work_id=work,
            answers={"q1": "3/4"},
            status=ev.WorkStatus.AUTO_GRADED,
            max_score=10,
            score=7.0,
            xp_awarded=35,
        ),
        ev.SessionEnded(**_at(MOVED, MOVED, 6, feb + timedelta(hours=1))),
        ev.SessionStarted(**_at(OPEN, OPEN, 3, march)),
        ev.HelpRequestRaised(
            **_at(OPEN, opened, 1, march + timedelta(minutes=5)),
            student_id=FIRST,
            help_request_id=uuid5(opened, "help-request:1"),
            priority=ev.HelpPriority.HIGH,
            sla_due_at=march + timedelta(minutes=10),
        ),
    ]
    return stream


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    """A seeded centre's months of history (students with more sessions than their document
    keeps), then the handmade sessions, in stream order."""
    folder: Path = tmp_path_factory.mktemp("student-order")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    try:
        seed_year(centres, events=1_500, tutors=1, students=6, seed=3, now=NOW)
        stored = centres.recorder.select_notifications(1, 1_000_000)
    finally:
        centres.close()
    seeded = [ev.decode(n.state) for n in stored]
    return [(e, n) for n, e in enumerate([*seeded, *handmade()], start=1)]


def _snapshot(tx: MemoryTransaction) -> Snapshot:
    return {
        key: (stored.version, encode(stored.doc))
        for key, stored in tx.docs.items()
        if key[0] in _KINDS
    }


def deliver(items: Sequence[Item], batches: Sequence[Sequence[int]]) -> MemoryTransaction:
    """Apply each batch (indexes into ``items``) as a projection replica does, in one
    transaction; an event refused while one it needs is missing comes back later on its own."""
    tx = MemoryTransaction()
    replay(items, batches, lambda: nullcontext(tx))
    return tx


def interleaving(items: Sequence[Item], rnd: random.Random) -> list[int]:
    """The events in a random order that keeps each aggregate's own order."""
    queues: dict[str, deque[int]] = {}
    for index, (event, _) in enumerate(items):
        queues.setdefault(str(event.aggregate_id), deque()).append(index)
    order: list[int] = []
    while queues:
        aggregate = rnd.choice(sorted(queues))
        order.append(queues[aggregate].popleft())
        if not queues[aggregate]:
            del queues[aggregate]
    return order


def batches_of(order: list[int], rnd: random.Random) -> Iterator[list[int]]:
    start = 0
    while start < len(order):
        size = rnd.choice((1, 3, 20, 200))
        yield order[start : start + size]
        start += size


def replica_batches(
    items: Sequence[Item], rnd: random.Random, again: float, later: bool
) -> list[list[int]]:
    """The events interleaved and cut into batches of 1 to 200, one batch delivered twice, as
    after a replica killed between its commit and its acks: the ``again`` fraction into the
    batches, once more at once or (``later``) at the end."""
    batches = list(batches_of(interleaving(items, rnd), rnd))
    repeated = batches[int(again * (len(batches) - 1))]
    at = len(batches) if later else batches.index(repeated) + 1
    batches.insert(at, list(repeated))
    return batches


@pytest.fixture(scope="module")
def in_stream_order(history: list[Item]) -> Snapshot:
    return _snapshot(deliver(history, [list(range(len(history)))]))


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rnd=st.randoms(use_true_random=False), again=st.floats(0, 1), later=st.booleans())
def test_any_interleaving_and_a_batch_delivered_again_give_the_same_documents(
    history: list[Item], in_stream_order: Snapshot, rnd: random.Random, again: float, later: bool
) -> None:
    batches = replica_batches(history, rnd, again, later)
    assert _snapshot(deliver(history, batches)) == in_stream_order


def test_a_session_stays_in_the_month_it_was_placed_in(in_stream_order: Snapshot) -> None:
    """Rescheduled from January to February after the enrolments, the session stays in
    January's document (its start says February), and the student's document counts it
    there; once the session started it is no longer watched for a move."""
    jan = student_history_key(str(FIRST), "2026-01")
    feb = student_history_key(str(FIRST), "2026-02")
    assert (STUDENT_SESSIONS.name, feb) not in in_stream_order
    month = STUDENT_SESSIONS.decode(in_stream_order[(STUDENT_SESSIONS.name, jan)][1])
    assert isinstance(month, StudentHistory)
    moved = month.sessions[str(MOVED)]
    assert (
        month_of(moved.starts_at) == "2026-02" and moved.attendance is ev.AttendanceStatus.PRESENT
    )
    student = STUDENT.decode(in_stream_order[(STUDENT.name, str(FIRST))][1])
    assert isinstance(student, Student) and isinstance(student.months, dict)
    assert student.months["2026-01"].sessions == 1 and student.months["2026-01"].work_xp == 35
    assert student.placement == {str(MOVED): "2026-01"}
    assert set(student.sessions) == {str(MOVED), str(OPEN)}


def test_a_document_of_an_earlier_release_gets_its_months_from_the_next_session_event(
    history: list[Item], in_stream_order: Snapshot
) -> None:
    """A ``student`` document written before the months holds every session, and there are no
    ``student_sessions`` documents. The student's next session event places their sessions in
    their months: the documents then hold what a rebuild writes (their versions count from
    there)."""
    cut = len(history) - 300
    tx = deliver(history, [list(range(cut))])
    every: dict[str, dict[str, StudentSession]] = {}
    for (kind, _), stored in list(tx.docs.items()):
        if kind == STUDENT_SESSIONS.name:
            every.setdefault(stored.doc.student_id, {}).update(stored.doc.sessions)
            del tx.docs[(kind, stored.key)]
    for (kind, key), stored in list(tx.docs.items()):
        if kind == STUDENT.name:
            earlier = msgspec.structs.replace(
                stored.doc,
                sessions=every.get(key, {}),
                months=msgspec.UNSET,
                totals=msgspec.UNSET,
                placement=msgspec.UNSET,
            )
            tx.docs[(kind, key)] = StoredDoc(
                STUDENT, key, stored.centre_id, stored.version, earlier
            )
    rest = list(range(cut, len(history)))
    for index in rest:
        batch = Batch(tx)
        apply(batch, *history[index])
        batch.flush()
    refreshed = {
        str(student_id)
        for e, _ in history[cut:]
        if e.centre_id != CENTRE and (student_id := getattr(e, "student_id", None)) is not None
    }
    assert refreshed
    for key in refreshed:
        for kind in (STUDENT.name, STUDENT_ALERTS.name):
            assert encode(tx.docs[(kind, key)].doc) == in_stream_order[(kind, key)][1], (kind, key)

    def months_of(docs: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        return {
            k: doc
            for k, doc in docs.items()
            if k[0] == STUDENT_SESSIONS.name and k[1].split(":")[0] in refreshed
        }

    assert months_of({k: encode(d.doc) for k, d in tx.docs.items()}) == months_of(
        {k: doc for k, (_, doc) in in_stream_order.items()}
    )
