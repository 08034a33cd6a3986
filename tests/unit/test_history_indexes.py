"""The catch-up list and the help-request analytics read the centre's indexes, not every
catch-up and session document it ever had; on a seeded centre they answer exactly what the
full read answered, page by page, and never anything of another centre."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.command.application import TutoringCentres
from services.command.commands.catch_ups import AssignCatchUp
from services.command.commands.sessions import EnrolStudent, RescheduleSession
from services.projections.rebuild import rebuild
from shared import events
from shared.events import OPEN_CATCH_UPS as STILL_OPEN
from shared.events import OPEN_HELP_REQUESTS, CatchUpStatus
from shared.eventstore import EventStoreSettings
from shared.readmodels import access, views
from shared.readmodels.documents import (
    CATCH_UP,
    OPEN_CATCH_UPS,
    SESSION,
    CatchUp,
    HelpRequest,
    Session,
)
from shared.readmodels.projector import apply_all
from shared.readmodels.projector.indexes import catch_ups_by_student_key
from shared.readmodels.store import ReadStore
from shared.readmodels.times import iso, parse
from shared.settings import load
from shared.tenancy import Actor, Forbidden, Role
from tests.bench.year import YearOfHistory, seed_year
from tests.builders import plan, register_centre, session_id
from tests.readside import read_store

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ReadStore, list[YearOfHistory]]]:
    folder: Path = tmp_path_factory.mktemp("indexes")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    years = [
        seed_year(centres, events=6_000, tutors=5, students=50, seed=3, centre_id="north", now=NOW),
        seed_year(centres, events=3_000, tutors=5, students=50, seed=4, centre_id="south", now=NOW),
    ]
    store = read_store(folder)
    rebuild(centres, store, settle_timeout=0)
    centres.close()
    yield store, years
    store.close()


def _full_catch_up_list(
    store: ReadStore, actor: Actor, wanted: access.CatchUpFilter, now: datetime
) -> dict[str, Any]:
    """The list as it was read before the index: every catch-up document of the centre."""
    tutor = access._own_tutor(actor, wanted.tutor_id)
    catch_ups = store.centre_docs(CATCH_UP, actor.centre_id)
    sessions = store.get_many(SESSION, [c.doc.session_id for c in catch_ups])
    matching: list[tuple[views.UrgencyKey, CatchUp, Session]] = []
    for stored in catch_ups:
        session = sessions.get(stored.doc.session_id)
        if session is None or (tutor and session.doc.tutor_id != tutor):
            continue
        if access._wanted(stored.doc, wanted, now):
            matching.append((views.catch_up_urgency(stored.doc), stored.doc, session.doc))
    matching.sort(key=lambda m: m[0])
    after = wanted.after
    page = [m for m in matching if after is None or m[0] > after][: wanted.limit]
    people = access.names(store, {m[1].student_id for m in page} | {m[2].tutor_id for m in page})
    more = len(page) == wanted.limit and page[-1] is not matching[-1]
    return {
        "catchUps": [views.catch_up_row(c, s, people, now) for _, c, s in page],
        "total": len(matching),
        "next": views.page_cursor(page[-1][0]) if more else None,
    }


def _pages(store: ReadStore, actor: Actor, wanted: access.CatchUpFilter, full: bool) -> list[Any]:
    pages: list[Any] = []
    while True:
        if full:
            data = _full_catch_up_list(store, actor, wanted, NOW)
        else:
            data = access.catch_up_list(store, actor, wanted, NOW).data
        pages.append(data)
        if data["next"] is None:
            return pages
        wanted = replace(wanted, after=views.parse_page_cursor(data["next"]))


FILTERS = [
    access.CatchUpFilter(),
    access.CatchUpFilter(limit=7),
    access.CatchUpFilter(limit=200),
    access.CatchUpFilter(overdue_only=True, limit=3),
    access.CatchUpFilter(status=CatchUpStatus.COMPLETED.value, limit=9),
    access.CatchUpFilter(status=CatchUpStatus.PENDING.value),
    access.CatchUpFilter(due_after=NOW - timedelta(days=100), due_before=NOW - timedelta(days=20)),
    access.CatchUpFilter(due_before=NOW - timedelta(days=300), limit=4),
]


def test_the_catch_up_list_pages_through_what_the_full_read_listed(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    store, (north, _) = seeded
    assert north.catch_ups > 20
    tutor = north.tutor
    for wanted in [
        *FILTERS,
        access.CatchUpFilter(tutor_id=tutor.user_id, limit=5),
        access.CatchUpFilter(student_id=north.student.user_id),
        access.CatchUpFilter(tutor_id=tutor.user_id, status=CatchUpStatus.COMPLETED.value, limit=6),
    ]:
        for actor in (north.supervisor, tutor):
            if actor is tutor and wanted.tutor_id not in (None, tutor.user_id):
                continue
            assert _pages(store, actor, wanted, full=False) == _pages(
                store, actor, wanted, full=True
            ), wanted
    everything = access.catch_up_list(store, north.supervisor, access.CatchUpFilter(), NOW)
    assert everything.data["total"] == north.catch_ups


def test_the_catch_up_lists_version_counts_each_catch_ups_events(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    """The list's version adds up the events behind its catch-ups from their times; a
    catch-up's document is shaped by its own events only, so its stored version counts them."""
    store, _ = seeded
    catch_ups = store.docs(CATCH_UP)
    assert len({d.version for d in catch_ups}) > 2, "the seeded catch-ups all had one history"
    for stored in catch_ups:
        assert access._events_behind(stored.doc) == stored.version, stored.key


def test_pages_that_open_catch_ups_fill_exactly_go_on_to_the_finished_ones(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    """A page that the open catch-ups fill to its last row, one short of it or one over: the
    list knows from the index's counts that finished ones follow, and pages on to them as the
    full read does."""
    store, (north, _) = seeded
    tutor = north.tutor
    open_rows = store.get(OPEN_CATCH_UPS, north.centre_id)
    assert open_rows is not None
    for actor, wanted in [
        (north.supervisor, access.CatchUpFilter()),
        (tutor, access.CatchUpFilter()),
    ]:
        own = access._own_tutor(actor, None)
        mine = [e for e in open_rows.doc.open.values() if own is None or e.tutor_id == own]
        assert mine, actor
        for limit in sorted({max(1, len(mine) - 1), len(mine), len(mine) + 1}):
            sized = replace(wanted, limit=limit)
            listed = _pages(store, actor, sized, full=False)
            assert listed == _pages(store, actor, sized, full=True), (actor.role, limit)
            assert len(listed) > 1 or limit > len(mine)


def _bytes(figures: dict[str, Any]) -> bytes:
    """The figures as the API sends them (keys in their order)."""
    return json.dumps(figures).encode()


def _open_requests(sessions: list[Session]) -> list[HelpRequest]:
    return [
        r
        for s in sessions
        for seat in s.students.values()
        for r in seat.help_requests.values()
        if r.status in OPEN_HELP_REQUESTS
    ]


def test_help_request_analytics_answer_what_the_full_read_answered(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    """The facts each month keeps give, byte for byte, the figures worked out from every
    session's whole requests: over a day, 30 days, a year, a period across months, for the
    centre, one tutor (named, or reading their own), and read at times when the requests
    still open are within their SLA, some of them past it, and all past it."""
    store, (north, _) = seeded
    sessions = [s.doc for s in store.centre_docs(SESSION, "north")]
    tutor_names = access.names(store, {s.tutor_id for s in sessions})
    tutor = str(north.tutor.user_id)
    mine = [s for s in sessions if s.tutor_id == tutor]
    waiting = _open_requests(sessions)
    raised = sorted(
        r.raised_at
        for s in sessions
        for seat in s.students.values()
        for r in seat.help_requests.values()
    )
    dues = sorted(iso(parse(r.sla_due_at)) for r in waiting)
    assert len(dues) >= 2 and dues[0] < dues[-1]
    # Read when none, some, and every one of the open requests is past its SLA.
    nows = [
        parse(dues[0]) - timedelta(seconds=1),
        parse(dues[0]) + (parse(dues[-1]) - parse(dues[0])) / 2,
        parse(dues[-1]) + timedelta(hours=1),
    ]
    middle = iso(nows[1])
    assert any(d < middle for d in dues) and any(d > middle for d in dues)
    windows = [
        (NOW - timedelta(days=30), NOW),
        (NOW - timedelta(days=366), NOW),
        (NOW - timedelta(hours=6), NOW),
        (NOW - timedelta(days=1), NOW + timedelta(hours=1)),
        (NOW - timedelta(days=200), NOW - timedelta(days=170, hours=5)),
        (datetime(2026, 3, 17, tzinfo=UTC), datetime(2026, 4, 12, 8, tzinfo=UTC)),
        (NOW, NOW + timedelta(days=1)),
        # From one request's raising to another's: the first counts, the last does not.
        (parse(raised[len(raised) // 3]), parse(raised[2 * len(raised) // 3])),
    ]
    for start, end in windows:
        for now in nows:
            answer = access.help_request_analytics(store, north.supervisor, start, end, None, now)
            assert _bytes(answer.data) == _bytes(
                views.help_request_analytics(sessions, tutor_names, start, end, now)
            ), (start, end, now)
            own = access.help_request_analytics(store, north.tutor, start, end, None, now)
            expected = views.help_request_analytics(mine, tutor_names, start, end, now)
            assert _bytes(own.data) == _bytes(expected)
            named = access.help_request_analytics(
                store, north.supervisor, start, end, north.tutor.user_id, now
            )
            assert _bytes(named.data) == _bytes(expected)
    breached = [
        access.help_request_analytics(
            store, north.supervisor, NOW - timedelta(hours=6), NOW + timedelta(hours=1), None, now
        ).data["overall"]["total"]["slaBreached"]
        for now in nows
    ]
    assert breached[0] < breached[1] < breached[2] == breached[0] + len(waiting)
    year = access.help_request_analytics(
        store, north.supervisor, NOW - timedelta(days=366), NOW, None, NOW
    )
    assert year.data["overall"]["total"]["raised"] == north.help_requests


def test_the_indexes_show_nothing_of_another_centre(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    store, (north, south) = seeded
    for centre, other in ((north, south), (south, north)):
        listed = _pages(store, centre.supervisor, access.CatchUpFilter(limit=200), full=False)
        rows = [row for page in listed for row in page["catchUps"]]
        assert len(rows) == listed[0]["total"] == centre.catch_ups
        assert {row["tutorId"] for row in rows} <= {str(t) for t in centre.tutor_ids}
        figures = access.help_request_analytics(
            store, centre.supervisor, NOW - timedelta(days=366), NOW, None, NOW
        ).data
        assert {t["tutorId"] for t in figures["tutors"]} <= {str(t) for t in centre.tutor_ids}
        assert figures["overall"]["total"]["raised"] == centre.help_requests
        # Naming the other centre's tutor finds nothing of theirs.
        stranger = access.help_request_analytics(
            store, centre.supervisor, NOW - timedelta(days=366), NOW, other.tutor.user_id, NOW
        ).data
        assert stranger["tutors"] == [] and stranger["overall"]["total"]["raised"] == 0
        foreign = access.catch_up_list(
            store, centre.supervisor, access.CatchUpFilter(tutor_id=other.tutor.user_id), NOW
        ).data
        assert foreign["catchUps"] == [] and foreign["total"] == 0
    other_tutor = Actor(user_id=south.tutor.user_id, role=Role.TEACHER, centre_id="north")
    with pytest.raises(Forbidden):
        access.catch_up_list(
            store, other_tutor, access.CatchUpFilter(tutor_id=north.tutor.user_id), NOW
        )


def test_a_moved_session_moves_in_the_catch_up_list_too(tmp_path: Path) -> None:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    centre = register_centre(centres, "moved")
    session = session_id(centres.handle(centre["tutor"], plan(hours_from_now=30)).body)
    ann = centre["ann"].user_id
    centres.handle(centre["tutor"], EnrolStudent(session_id=session, student_id=ann))
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    centres.handle(
        centre["supervisor"],
        AssignCatchUp(session_id=session, student_id=ann, due_at=due, reason="extra practice"),
    )
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    centres.handle(
        centre["tutor"],
        RescheduleSession(session_id=session, starts_at=later, ends_at=later + timedelta(hours=1)),
    )
    store = read_store(tmp_path)
    rebuild(centres, store, settle_timeout=0)
    now = datetime.now(UTC)
    listed = access.catch_up_list(store, centre["supervisor"], access.CatchUpFilter(), now).data
    assert [row["sessionStartsAt"] for row in listed["catchUps"]] == [iso(later)]
    assert listed == _full_catch_up_list(store, centre["supervisor"], access.CatchUpFilter(), now)
    store.close()
    centres.close()


def test_the_catch_up_list_shows_each_catch_up_in_its_stored_order(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    """A page's catch-ups are converted together and completed in place: each row is the
    catch-up's JSON as stored (sorted keys), then what the list adds, in the order it always
    had."""
    store, (north, _) = seeded
    added = [
        "studentName",
        "sessionTitle",
        "sessionStartsAt",
        "tutorId",
        "tutorName",
        "overdue",
        "overdueSeconds",
    ]
    rows = [
        row
        for page in _pages(store, north.supervisor, access.CatchUpFilter(limit=40), full=False)
        for row in page["catchUps"]
    ]
    assert len(rows) == north.catch_ups
    for row in rows:
        keys = list(row)
        assert keys[: -len(added)] == sorted(keys[: -len(added)]) and keys[-len(added) :] == added


def _finished_by_student(store: ReadStore, centre_id: str) -> Counter[str]:
    return Counter(
        d.doc.student_id
        for d in store.centre_docs(CATCH_UP, centre_id)
        if d.doc.status not in STILL_OPEN
    )


def test_the_counts_per_student_have_a_document_of_their_own(
    seeded: tuple[ReadStore, list[YearOfHistory]],
) -> None:
    """The centre's index, which every read of the list decodes, keeps no count per student
    (one entry for every student who ever finished a catch-up): those are in a document of
    their own, read only by a list filtered by student, which answers what the full read
    answers."""
    store, years = seeded
    for year in years:
        index = store.get(OPEN_CATCH_UPS, year.centre_id)
        counted = store.get(OPEN_CATCH_UPS, catch_ups_by_student_key(year.centre_id))
        assert index is not None and counted is not None
        assert index.doc.closed_by_student == {} and counted.doc.open == {}
        finished = _finished_by_student(store, year.centre_id)
        assert counted.doc.closed_by_student == finished
        assert sum(finished.values()) == sum(index.doc.closed_by_month.values())
        for student_id, _ in finished.most_common(3):
            wanted = access.CatchUpFilter(student_id=UUID(student_id), limit=4)
            listed = _pages(store, year.supervisor, wanted, full=False)
            assert listed == _pages(store, year.supervisor, wanted, full=True)
            assert listed[0]["total"] >= finished[student_id]


def _as_an_earlier_release_wrote_it(store: ReadStore, path: Path, centre_id: str) -> None:
    """The counts per student back in the centre's index, and no document of their own."""
    table = f"rm_docs_{store.generation()}"
    by_student = catch_ups_by_student_key(centre_id)
    with sqlite3.connect(path) as connection:
        select = f"SELECT doc FROM {table} WHERE kind = ? AND key = ?"
        (counted,) = connection.execute(select, ("open_catch_ups", by_student)).fetchone()
        (index,) = connection.execute(select, ("open_catch_ups", centre_id)).fetchone()
        parsed = json.loads(index)
        parsed["closedByStudent"] = json.loads(counted)["closedByStudent"]
        connection.execute(
            f"UPDATE {table} SET doc = ? WHERE kind = ? AND key = ?",
            (
                json.dumps(parsed, sort_keys=True, separators=(",", ":")),
                "open_catch_ups",
                centre_id,
            ),
        )
        connection.execute(
            f"DELETE FROM {table} WHERE kind = ? AND key = ?", ("open_catch_ups", by_student)
        )


def _catch_up_indexes(store: ReadStore) -> list[tuple[Any, ...]]:
    return [
        row
        for row in store.dump(store.generation())["rm_docs"]
        if row[0] in ("open_catch_ups", "closed_catch_ups")
    ]


def test_an_index_with_the_counts_per_student_is_read_and_moves_them_at_the_next_event(
    tmp_path: Path,
) -> None:
    """A store projected by an earlier release (counts per student in the centre's index)
    answers the list filtered by student as before; the next catch-up event moves the counts
    to their own document, as a rebuild writes it. Applied in batches, as the projection
    service does, the indexes are those of one pass over every event, versions too."""
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    year = seed_year(centres, events=3_000, tutors=5, students=50, seed=6, centre_id="old", now=NOW)
    items = [
        (events.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 1_000_000)
    ]
    centres.close()
    half = len(items) // 2
    earlier, now = read_store(tmp_path, "earlier.sqlite"), read_store(tmp_path, "now.sqlite")
    for store in (earlier, now):
        apply_all(store, items[:half])
    _as_an_earlier_release_wrote_it(earlier, tmp_path / "earlier.sqlite", year.centre_id)
    index = earlier.get(OPEN_CATCH_UPS, year.centre_id)
    assert index is not None and index.doc.closed_by_student
    finished = _finished_by_student(now, year.centre_id)
    assert finished
    for student_id in finished:
        wanted = access.CatchUpFilter(student_id=UUID(student_id))
        before = access.catch_up_list(earlier, year.supervisor, wanted, NOW)
        assert before == access.catch_up_list(now, year.supervisor, wanted, NOW)
    for store in (earlier, now):
        apply_all(store, items[half:])
    moved = earlier.get(OPEN_CATCH_UPS, year.centre_id)
    assert moved is not None and moved.doc.closed_by_student == {}
    assert [row[:3] + row[4:] for row in _catch_up_indexes(earlier)] == [
        row[:3] + row[4:] for row in _catch_up_indexes(now)
    ]  # the same documents (the versions of the moved ones count the move)
    batched = read_store(tmp_path, "batched.sqlite")
    for start in range(0, len(items), 200):
        apply_all(batched, items[start : start + 200])
    assert _catch_up_indexes(batched) == _catch_up_indexes(now)
    for store in (earlier, now, batched):
        store.close()
