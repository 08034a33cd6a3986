"""A tutor's months of help requests keep the facts of each request: they are a function of the
set of events applied (any interleaving of the aggregates, in batches of any size, a batch
delivered again), and a read store written by an earlier release, whose months hold whole
requests, still answers the analytics exactly; the next event of a request in such a month
gives it the facts a rebuild writes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.command.application import TutoringCentres
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.readmodels import access, views
from shared.readmodels.documents import (
    HELP_INDEX,
    HELP_REQUESTS,
    SESSION,
    HelpRequest,
    Session,
    encode,
    help_month_key,
    month_of,
)
from shared.readmodels.documents.indexes import help_facts
from shared.readmodels.projector import Batch, apply
from shared.readmodels.store import MemoryTransaction, StoredDoc
from shared.settings import load
from shared.tenancy import Actor, Role
from tests.bench.year import seed_year
from tests.readside import read_store
from tests.support.out_of_order import Item
from tests.unit.test_student_history_order import deliver, replica_batches

Snapshot = dict[tuple[str, str], tuple[int, str]]

NOW = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)
CENTRE = "facts"
_KINDS = (HELP_REQUESTS.name, HELP_INDEX.name)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    """A seeded centre's months of help requests (some still open in today's live session),
    in stream order."""
    folder: Path = tmp_path_factory.mktemp("help-facts")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    try:
        seed_year(centres, events=3_000, tutors=3, students=24, seed=11, centre_id=CENTRE, now=NOW)
        stored = centres.recorder.select_notifications(1, 1_000_000)
    finally:
        centres.close()
    return [(ev.decode(n.state), i) for i, n in enumerate(stored, start=1)]


def _snapshot(tx: MemoryTransaction) -> Snapshot:
    return {
        key: (stored.version, encode(stored.doc))
        for key, stored in tx.docs.items()
        if key[0] in _KINDS
    }


@pytest.fixture(scope="module")
def in_stream_order(history: list[Item]) -> Snapshot:
    return _snapshot(deliver(history, [list(range(len(history)))]))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rnd=st.randoms(use_true_random=False), again=st.floats(0, 1), later=st.booleans())
def test_any_interleaving_and_a_batch_delivered_again_give_the_same_months(
    history: list[Item], in_stream_order: Snapshot, rnd: random.Random, again: float, later: bool
) -> None:
    assert sum(1 for kind, _ in in_stream_order if kind == HELP_REQUESTS.name) > 3
    batches = replica_batches(history, rnd, again, later)
    assert _snapshot(deliver(history, batches)) == in_stream_order


def _as_an_earlier_release_wrote(tx: MemoryTransaction, every_other: bool) -> set[str]:
    """Turn the months of help requests back into what an earlier release wrote: each request
    as its session shows it, no facts (every month, or every other month, ``NOW``'s among
    them). Returns their keys."""
    requests: dict[str, dict[str, HelpRequest]] = {}
    for (kind, _), stored in tx.docs.items():
        if kind != SESSION.name:
            continue
        session: Session = stored.doc
        for seat in session.students.values():
            for request_id, request in seat.help_requests.items():
                key = help_month_key(
                    session.centre_id, session.tutor_id, month_of(request.raised_at)
                )
                requests.setdefault(key, {})[request_id] = msgspec.structs.replace(request)
    keys = sorted(key for kind, key in tx.docs if kind == HELP_REQUESTS.name)
    earlier = {key for key in keys if not every_other or int(key[-2:]) % 2 == NOW.month % 2}
    for key in earlier:
        stored = tx.docs[(HELP_REQUESTS.name, key)]
        assert set(requests[key]) == set(stored.doc.facts)
        old = msgspec.structs.replace(stored.doc, facts={}, requests=requests[key])
        tx.docs[(HELP_REQUESTS.name, key)] = StoredDoc(
            HELP_REQUESTS, key, stored.centre_id, stored.version, old
        )
    return earlier


def _open_dues(tx: MemoryTransaction) -> list[str]:
    return sorted(
        r.sla_due_at
        for (kind, _), stored in tx.docs.items()
        if kind == SESSION.name
        for seat in stored.doc.students.values()
        for r in seat.help_requests.values()
        if r.status in ev.OPEN_HELP_REQUESTS
    )


def _analytics_match_the_full_read(tx: MemoryTransaction, folder: Path) -> int:
    """Every document of ``tx`` in a read store: its analytics of several periods, read at
    several times, equal those worked out from every session's whole requests. Returns how
    many requests were read in all."""
    store = read_store(folder, f"{uuid4()}.sqlite")
    try:
        with store.transaction() as write:
            write.put_many(list(tx.docs.values()))
        sessions = [s.doc for s in store.centre_docs(SESSION, CENTRE)]
        names = access.names(store, {s.tutor_id for s in sessions})
        supervisor = Actor(user_id=uuid4(), role=Role.CENTER_SUPERVISOR, centre_id=CENTRE)
        dues = _open_dues(tx)
        nows = [NOW - timedelta(hours=2), NOW + timedelta(days=1)]
        if dues:
            nows.append(datetime.fromisoformat(dues[len(dues) // 2]))
        read = 0
        for start, end in [
            (NOW - timedelta(days=30), NOW + timedelta(hours=1)),
            (NOW - timedelta(days=1), NOW + timedelta(hours=1)),
            (datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 2, 10, 12, tzinfo=UTC)),
            (NOW - timedelta(days=400), NOW + timedelta(days=1)),
        ]:
            for now in nows:
                answer = access.help_request_analytics(store, supervisor, start, end, None, now)
                expected = views.help_request_analytics(sessions, names, start, end, now)
                assert json.dumps(answer.data) == json.dumps(expected), (start, end, now)
                read += answer.data["overall"]["total"]["raised"]
        return read
    finally:
        store.close()


@pytest.mark.parametrize("every_other", [False, True])
def test_months_an_earlier_release_wrote_still_answer_and_get_facts_from_the_next_event(
    history: list[Item], in_stream_order: Snapshot, tmp_path: Path, every_other: bool
) -> None:
    """Months of whole requests (all of them, or every other month beside months of facts)
    answer what the full read answers; the next event of a request turns its month into the
    month a rebuild writes, with the same version; the months no later event touched stay as
    they were and still answer."""
    raised = [i for i, (e, _) in enumerate(history) if isinstance(e, ev.HelpRequestRaised)]
    cut = raised[-3]  # the last requests are still open in the live session
    tx = deliver(history, [list(range(cut))])
    earlier = _as_an_earlier_release_wrote(tx, every_other)
    assert earlier
    assert _analytics_match_the_full_read(tx, tmp_path) > 0
    for index in range(cut, len(history)):
        batch = Batch(tx)
        apply(batch, *history[index])
        batch.flush()
    turned = 0
    for (kind, key), (version, doc) in in_stream_order.items():
        if kind != HELP_REQUESTS.name:
            continue
        stored = tx.docs[(kind, key)]
        assert stored.version == version, key
        if stored.doc.facts:
            assert encode(stored.doc) == doc, key
            turned += key in earlier
        else:
            assert key in earlier and stored.doc.requests
            facts = {k: help_facts(r) for k, r in stored.doc.requests.items()}
            assert facts == HELP_REQUESTS.decode(doc).facts, key
    assert turned >= 1
    assert _analytics_match_the_full_read(tx, tmp_path) > 0
