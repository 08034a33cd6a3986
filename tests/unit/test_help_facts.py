"""A tutor's months of help requests keep the facts of each request as columns: they are a
function of the set of events applied (any interleaving of the aggregates, in batches of any
size, a batch delivered again), and a read store written by an earlier release, whose months
hold whole requests or the facts of each by id, still answers the analytics exactly; the next
event of a request in such a month gives it the columns a rebuild writes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
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
from shared.readmodels.documents.indexes import (
    HelpFacts,
    HelpRequestsOfMonth,
    help_columns,
    help_facts,
    month_facts,
)
from shared.readmodels.projector import Batch, apply
from shared.readmodels.store import MemoryTransaction, StoredDoc
from shared.readmodels.times import iso
from shared.readmodels.views.reports import help_month_analytics
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
    """Turn the months of help requests back into what earlier releases wrote: each request
    as its session shows it, or the facts of each by id, no columns (every month, or every
    other month, ``NOW``'s among them; whole requests and facts taking turns). Returns their
    keys."""
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
    for turn, key in enumerate(sorted(earlier)):
        stored = tx.docs[(HELP_REQUESTS.name, key)]
        facts = month_facts(stored.doc)
        assert set(requests[key]) == set(facts)
        assert facts == {k: help_facts(r) for k, r in requests[key].items()}
        bare = msgspec.structs.replace(stored.doc, columns=None, ids=[])
        old = (
            msgspec.structs.replace(bare, requests=requests[key])
            if turn % 2 == 0
            else msgspec.structs.replace(bare, facts=facts)
        )
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
    """Months of whole requests or of facts by id (all of them, or every other month beside
    months of columns) answer what the full read answers; the next event of a request turns
    its month into the month a rebuild writes, with the same version; the months no later
    event touched stay as they were and still answer."""
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
        if stored.doc.columns is not None:
            assert encode(stored.doc) == doc, key
            turned += key in earlier
        else:
            assert key in earlier and (stored.doc.requests or stored.doc.facts)
            assert month_facts(stored.doc) == month_facts(HELP_REQUESTS.decode(doc)), key
    assert turned >= 1
    assert _analytics_match_the_full_read(tx, tmp_path) > 0


_BASE = datetime(2026, 2, 25, tzinfo=UTC)
_INSTANTS = st.integers(0, 10 * 24 * 3600).map(lambda s: _BASE + timedelta(seconds=s))
_DURATIONS = st.one_of(st.none(), st.sampled_from([0.0, 1.5, 60.0]), st.floats(0, 10**6))


@st.composite
def _some_facts(draw: st.DrawFn) -> HelpFacts:
    raised = draw(_INSTANTS)
    status = draw(st.sampled_from(list(ev.HelpRequestStatus)))
    closed = status not in ev.OPEN_HELP_REQUESTS
    return HelpFacts(
        raised_at=iso(raised),
        priority=draw(st.sampled_from(list(ev.HelpPriority))),
        status=status,
        response=draw(_DURATIONS),
        resolution=draw(_DURATIONS),
        breached=closed and draw(st.booleans()),
        open_until=None if closed else iso(raised + timedelta(minutes=draw(st.integers(1, 900)))),
    )


@settings(max_examples=150, deadline=None)
@given(
    months=st.lists(
        st.tuples(
            st.sampled_from(["t1", "t2", "t3"]),
            st.dictionaries(st.uuids().map(str), _some_facts(), max_size=40),
        ),
        max_size=5,
    ),
    start=_INSTANTS,
    length=st.integers(0, 12 * 24 * 3600),
    now=_INSTANTS,
    zone=st.integers(-12, 14),
)
def test_columns_answer_what_each_requests_facts_answer(
    months: list[tuple[str, dict[str, HelpFacts]]],
    start: datetime,
    length: int,
    now: datetime,
    zone: int,
) -> None:
    """Any facts (ties in raised time, all statuses and priorities, durations of 0 or none,
    open requests due before or after ``now``), in any period, asked in any time zone: the
    analytics of the columns are, byte for byte, those of counting each request's facts, and
    the columns give back the facts they were written from."""
    tz = timezone(timedelta(hours=zone))
    as_facts, as_columns = [], []
    for tutor_id, facts in months:
        month = HelpRequestsOfMonth(centre_id=CENTRE, tutor_id=tutor_id, month="2026-03")
        as_facts.append(msgspec.structs.replace(month, facts=facts))
        columns, ids = help_columns(facts)
        written = msgspec.structs.replace(month, columns=columns, ids=ids)
        assert month_facts(written) == facts
        as_columns.append(HELP_REQUESTS.decode(encode(written)))
    names = {"t1": "Ada", "t2": "Bo", "t3": "Cy"}
    period = (start.astimezone(tz), (start + timedelta(seconds=length)).astimezone(tz), now)
    expected = json.dumps(help_month_analytics(as_facts, names, *period))
    assert json.dumps(help_month_analytics(as_columns, names, *period)) == expected
    for form in (as_facts, as_columns):  # as the access function reads them
        read = [access.HELP_MONTH_READ.decode(encode(month)) for month in form]
        assert json.dumps(help_month_analytics(read, names, *period)) == expected
