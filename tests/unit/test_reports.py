"""The pieces behind the centre reports: listing a centre's documents, the catch-up documents,
help-request statistics and absence streaks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from shared.events import (
    AttendanceStatus,
    CatchUpAssigned,
    CatchUpStatus,
    HelpPriority,
    HelpRequestStatus,
    SessionMode,
    SessionStatus,
)
from shared.readmodels import views
from shared.readmodels.documents import (
    CATCH_UP,
    PERSON,
    SESSION,
    CatchUp,
    Document,
    HelpRequest,
    Kind,
    Person,
    Session,
    Student,
    StudentSession,
)
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, StoredDoc, open_read_store
from shared.settings import load
from shared.tenancy import Role
from tests.readside import demo_events, read_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    if request.param == "sqlite":
        store = read_store(tmp_path)
    else:
        store = open_read_store(
            load(
                ReadStoreSettings,
                {"TUTORPULSE_READ_STORE": "postgres", **request.getfixturevalue("pg").env()},
            )
        )
    yield store
    store.close()


def _doc(kind: Kind[Any], key: str, centre: str) -> Document:
    """A document of ``kind`` whose key shows in its fields."""
    if kind is PERSON:
        return Person(person_id=key, name=key, role=Role.STUDENT)
    if kind is SESSION:
        return Session(
            session_id=key,
            centre_id=centre,
            title=key,
            tutor_id="t",
            status=SessionStatus.LIVE,
            starts_at=_at(0),
            ends_at=_at(60),
            time_zone="UTC",
            mode=SessionMode.ONLINE,
        )
    return CatchUp(
        catch_up_id=key,
        session_id="s",
        student_id="x",
        reason=key,
        due_at=_at(0),
        status=CatchUpStatus.PENDING,
        assigned_at=_at(0),
        assigned_by="t",
    )


def _put(store: ReadStore, *docs: tuple[Kind[Any], str, str]) -> None:
    with store.transaction() as tx:
        tx.put_many(
            [StoredDoc(kind, key, centre, 1, _doc(kind, key, centre)) for kind, key, centre in docs]
        )


def test_a_centres_documents_of_one_kind(store: ReadStore) -> None:
    _put(
        store,
        (CATCH_UP, "b", "alpha"),
        (CATCH_UP, "a", "alpha"),
        (CATCH_UP, "c", "beta"),
        (SESSION, "d", "alpha"),
    )
    listed = store.centre_docs(CATCH_UP, "alpha")
    assert [(d.key, d.centre_id, d.doc.catch_up_id) for d in listed] == [
        ("a", "alpha", "a"),
        ("b", "alpha", "b"),
    ]
    assert store.centre_docs(CATCH_UP, "gamma") == []


def test_many_documents_by_key_at_once(store: ReadStore) -> None:
    keys = [f"k{i:04}" for i in range(950)]  # more than one chunk of the IN list
    _put(store, *((PERSON, key, "alpha") for key in keys))
    found = store.get_many(PERSON, [*keys, "missing", keys[0]])
    assert sorted(found) == keys and found["k0007"].doc.name == "k0007"
    assert store.get_many(SESSION, keys[:3]) == {} and store.get_many(PERSON, []) == {}


def test_a_store_made_before_the_centre_index_gets_it(tmp_path: Path) -> None:
    store = read_store(tmp_path)
    generation = store.generation()
    store.close()
    with sqlite3.connect(tmp_path / "read.sqlite") as connection:
        connection.execute(f"DROP INDEX rm_docs_{generation}_centre")
    reopened = read_store(tmp_path)
    with sqlite3.connect(tmp_path / "read.sqlite") as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        indexes = {row[0] for row in rows}
    assert f"rm_docs_{generation}_centre" in indexes
    reopened.close()


def test_every_catch_up_of_the_demo_has_its_own_document(tmp_path: Path) -> None:
    store = read_store(tmp_path)
    apply_all(store, demo_events())
    assigned = [e for e, _ in demo_events() if isinstance(e, CatchUpAssigned)]
    listed = {d.key: d.doc for d in store.centre_docs(CATCH_UP, assigned[0].centre_id)}
    assert set(listed) == {str(e.aggregate_id) for e in assigned} and len(listed) >= 2
    for event in assigned:
        doc = listed[str(event.aggregate_id)]
        assert doc.session_id == str(event.session_id)
        assert doc.status == "PENDING" and doc.reason == event.reason
    store.close()


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (NOW - timedelta(hours=1) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request(priority: str = "HIGH", sla: float = 300, **stamps: float) -> HelpRequest:
    status = (
        "RESOLVED"
        if "resolvedAt" in stamps
        else "CANCELLED"
        if "cancelledAt" in stamps
        else "IN_PROGRESS"
        if "startedAt" in stamps
        else "ACKNOWLEDGED"
        if "acknowledgedAt" in stamps
        else "PENDING"
    )
    times: dict[str, Any] = {key.replace("At", "_at"): _at(value) for key, value in stamps.items()}
    return HelpRequest(
        help_request_id="h",
        session_id="s",
        student_id="x",
        priority=HelpPriority(priority),
        status=HelpRequestStatus(status),
        raised_at=_at(0),
        sla_due_at=_at(sla),
        **times,
    )


def test_help_request_statistics() -> None:
    requests = [_request(acknowledgedAt=i, resolvedAt=10 * i) for i in range(1, 11)]
    stats = views.help_request_stats(requests, NOW)
    assert stats["responseSeconds"] == {"count": 10, "mean": 5.5, "median": 5.5, "p90": 9.0}
    assert stats["resolutionSeconds"] == {"count": 10, "mean": 55.0, "median": 55.0, "p90": 90.0}
    assert (stats["raised"], stats["resolved"], stats["open"], stats["slaBreached"]) == (
        10,
        10,
        0,
        0,
    )


def test_the_first_answer_counts_and_an_sla_is_breached_by_staying_open_too_long() -> None:
    both = _request(acknowledgedAt=40, startedAt=20, resolvedAt=60)  # started before acknowledged
    late = _request(sla=30, startedAt=10, resolvedAt=31)
    withdrawn_late = _request(sla=30, cancelledAt=45)
    waiting = _request(sla=30)  # still open an hour later
    waiting_in_time = _request(sla=7200, acknowledgedAt=5)
    stats = views.help_request_stats([both, late, withdrawn_late, waiting, waiting_in_time], NOW)
    assert stats["responseSeconds"] == {"count": 3, "mean": 11.667, "median": 10.0, "p90": 20.0}
    assert (stats["slaBreached"], stats["open"], stats["cancelled"], stats["resolved"]) == (
        3,
        2,
        1,
        2,
    )


def test_absence_streaks_count_the_latest_marked_sessions() -> None:
    def sessions(*marks: str | None) -> Student:
        return Student(
            student_id="s",
            centre_id="alpha",
            sessions={
                str(i): StudentSession(
                    session_id=str(i),
                    title=f"S{i}",
                    status=SessionStatus.COMPLETED,
                    starts_at=_at(i * 60),
                    ends_at=_at(i * 60 + 30),
                    enrolled=True,
                    attendance=AttendanceStatus(mark) if mark else None,
                )
                for i, mark in enumerate(marks)
            },
        )

    assert len(views.absence_streak(sessions("ABSENT", "PRESENT", "ABSENT", "ABSENT", None))) == 2
    assert views.absence_streak(sessions("ABSENT", "ABSENT", "EXCUSED")) == []
    students = {
        "s1": sessions("ABSENT", "ABSENT", "ABSENT"),
        "s2": sessions("PRESENT", "ABSENT"),
        "s3": sessions("LATE", "ABSENT", "ABSENT"),
    }
    found = views.repeated_absences(students, {"s1": "Zed", "s3": "Amy"})
    assert [(a["studentName"], a["consecutiveAbsences"]) for a in found] == [("Zed", 3), ("Amy", 2)]
    assert [s["sessionId"] for s in found[1]["sessions"]] == ["2", "1"]


def test_page_cursors_round_trip_and_refuse_anything_else() -> None:
    key = (0, "2026-03-02T12:00:00.000000Z", "a-catch-up")
    assert views.parse_page_cursor(views.page_cursor(key)) == key
    # A cursor made of a key of the wrong types (ints where strings belong) is refused too.
    wrong_types = views.page_cursor(cast(tuple[int, str, str], (0, 1, 2)))
    for bad in ("", "!!", wrong_types, "WzEsMl0"):
        with pytest.raises(ValueError, match="not a cursor"):
            views.parse_page_cursor(bad)


def test_the_shipped_client_describes_overviews_and_rosters() -> None:
    from services.live_gateway.client import describe

    overview = {
        "name": "Michael Lee",
        "sessions": [{}, {}, {}],
        "notes": [{}],
        "attendanceSummary": {"PRESENT": 1, "LATE": 0, "ABSENT": 2, "EXCUSED": 0},
        "catchUps": [{"status": "PENDING"}, {"status": "COMPLETED"}],
    }
    assert (
        describe(overview)
        == "Michael Lee: 3 sessions (PRESENT 1, ABSENT 2), 1 open catch-ups, 1 notes"
    )
    roster = {
        "name": "Year 9 Maths",
        "status": "ACTIVE",
        "members": [],
        "enrolled": 2,
        "placesLeft": 1,
    }
    assert describe(roster) == "Year 9 Maths ACTIVE: 2 members, 1 places left"
    catch_ups = {"catchUps": [{"overdue": True}, {"overdue": False}], "total": 7, "next": "abc"}
    assert describe(catch_ups) == "7 catch-ups, 1 of the first 2 overdue"
