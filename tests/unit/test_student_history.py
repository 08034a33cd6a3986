"""Every session of a student lives in the ``student_sessions`` document of its month; their
``student`` document keeps the months' totals and a window (what the overview lists, what the
risk score reads), and the overview's totals and risk still count every session: the same
answer as from a document that holds every session, as documents did before."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.command.application import TutoringCentres
from services.projections.rebuild import rebuild
from shared import events as ev
from shared.events import Difficulty, ExerciseType
from shared.eventstore import EventStoreSettings
from shared.readmodels import access
from shared.readmodels.documents import (
    KINDS,
    RECENT_WORK,
    STUDENT,
    STUDENT_ALERTS,
    STUDENT_RECENT_SESSIONS,
    STUDENT_RISK,
    STUDENT_SESSIONS,
    AbsentFrom,
    Student,
    StudentAlerts,
    StudentSession,
    Work,
    listed,
    month_of,
)
from shared.readmodels.projector import apply_all
from shared.readmodels.projector import student as student_projector
from shared.readmodels.projector.student import risk_inputs
from shared.readmodels.store import ReadStore, StoredDoc
from shared.readmodels.times import iso
from shared.readmodels.views import absence_streak, risk_of
from shared.readmodels.views import students as student_views
from shared.readmodels.views.risk import risk_from
from shared.settings import load
from shared.tenancy import Actor, Role
from tests.bench.year import YearOfHistory, seed_year
from tests.readside import read_store

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)


class Stores(msgspec.Struct):
    bounded: ReadStore
    """As the projections write it."""
    read_months: ReadStore
    """The same, each window worked out by reading the months rather than from the last."""
    everything: ReadStore
    """The same, with each ``student`` document holding every session, as before."""
    year: YearOfHistory


def _every_session(store: ReadStore, centre_id: str) -> dict[str, list[StudentSession]]:
    by_student: dict[str, list[StudentSession]] = {}
    for month in store.centre_docs(STUDENT_SESSIONS, centre_id):
        by_student.setdefault(month.doc.student_id, []).extend(month.doc.sessions.values())
    return by_student


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    folder: Path = tmp_path_factory.mktemp("student-history")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    year = seed_year(centres, events=15_000, tutors=5, students=25, seed=5, now=NOW)
    bounded = read_store(folder, "bounded.sqlite")
    rebuild(centres, bounded, settle_timeout=0)
    read_months = read_store(folder, "read-months.sqlite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(student_projector, "_window_from", lambda *_: None)
        rebuild(centres, read_months, settle_timeout=0)
    everything = read_store(folder, "everything.sqlite")
    rebuild(centres, everything, settle_timeout=0)
    centres.close()
    every = _every_session(everything, year.centre_id)
    whole = []
    for stored in everything.centre_docs(STUDENT, year.centre_id):
        doc = msgspec.structs.replace(
            stored.doc,
            sessions={s.session_id: s for s in every.get(stored.key, [])},
            months=msgspec.UNSET,
            totals=msgspec.UNSET,
            placement=msgspec.UNSET,
        )
        whole.append(StoredDoc(STUDENT, stored.key, stored.centre_id, stored.version, doc))
    with everything.transaction() as tx:
        tx.put_many(whole)
    yield Stores(bounded, read_months, everything, year)
    for store in (bounded, read_months, everything):
        store.close()


def _stored_without_alerts(store: ReadStore) -> tuple[list[StoredDoc[Any]], list[StoredDoc[Any]]]:
    """Every document of the store's generation but the ``student_alerts`` (as a store projected
    before they were kept holds), and the students' documents among them."""
    generation = store.generation()
    rows = [
        d
        for kind in KINDS.values()
        if kind is not STUDENT_ALERTS
        for d in store.docs(kind, generation)
    ]
    return rows, [d for d in rows if d.kind is STUDENT]


def _older(store: ReadStore, actor: Actor, student_id: str) -> list[dict[str, Any]]:
    """Every page of the student's older sessions, newest month first."""
    sessions: list[dict[str, Any]] = []
    month = None
    while True:
        page = access.student_sessions(store, actor, UUID(student_id), month).data
        sessions += page["sessions"]
        month = page["next"]
        if month is None:
            return sessions


def test_each_session_lives_in_its_month_and_the_document_keeps_a_window(stores: Stores) -> None:
    year = stores.year
    every = _every_session(stores.bounded, year.centre_id)
    left_out = 0
    for stored in stores.bounded.centre_docs(STUDENT, year.centre_id):
        student: Student = stored.doc
        sessions = sorted(every.get(stored.key, []), key=lambda s: (s.starts_at, s.session_id))
        ids = [s.session_id for s in sessions]
        assert len(ids) == len(set(ids))  # in one month each
        assert isinstance(student.months, dict) and isinstance(student.totals, msgspec.Struct)
        assert student.totals.count == len(sessions)
        by_month: dict[str, int] = {}
        for s in sessions:
            by_month[month_of(s.starts_at)] = by_month.get(month_of(s.starts_at), 0) + 1
        assert {m: t.sessions for m, t in student.months.items()} == by_month
        # The window, worked out from every session.
        shown = {s.session_id for s in listed(sessions)}
        marked = {s.session_id for s in sessions if s.attendance}
        latest_marked = [s for s in sessions if s.session_id in marked][-12:]
        works = heapq.nlargest(
            12,
            (
                (w.graded_at or w.submitted_at or w.assigned_at, w.work_id, s.session_id)
                for s in sessions
                for w in s.work.values()
                if w.status.value in ("AUTO_GRADED", "GRADED") and w.score is not None
            ),
        )
        done = heapq.nlargest(
            RECENT_WORK,
            (
                (w.assigned_at, w.work_id, s.session_id)
                for s in sessions
                for w in s.work.values()
                if w.status.value not in ("ASSIGNED", "IN_PROGRESS")
            ),
        )
        expected = (
            shown
            | {s.session_id for s in latest_marked}
            | {w[2] for w in works}
            | {w[2] for w in done}
        )
        assert student.sessions == {s.session_id: s for s in sessions if s.session_id in expected}
        left_out += len(sessions) - len(shown)
    assert left_out > 0  # the seeded year gives students more sessions than the overview lists


def test_the_window_from_the_last_one_is_the_window_read_from_the_months(stores: Stores) -> None:
    assert stores.bounded.dump(stores.bounded.generation()) == stores.read_months.dump(
        stores.read_months.generation()
    )


def test_the_overview_counts_every_session_as_before(stores: Stores) -> None:
    year = stores.year
    for student_id in year.student_ids:
        now = access.student_overview(stores.bounded, year.supervisor, student_id, NOW).data
        before = access.student_overview(stores.everything, year.supervisor, student_id, NOW).data
        for field in (
            "attendanceSummary",
            "xp",
            "risk",
            "today",
            "homework",
            "openHelpRequest",
            "exercises",
        ):
            assert now[field] == before[field], (student_id, field)
        kept = {s["sessionId"] for s in now["sessions"]}
        assert now["sessions"] == [s for s in before["sessions"] if s["sessionId"] in kept]
        # The catch-ups of the sessions listed: every open one, the finished ones of late.
        assert now["catchUps"] == [c for c in before["catchUps"] if c["sessionId"] in kept]
        assert all(
            c["sessionId"] in kept
            for c in before["catchUps"]
            if c["status"] in ("PENDING", "IN_PROGRESS")
        )
        assert now["olderSessions"]["count"] == len(before["sessions"]) - len(kept)
        older = _older(stores.bounded, year.supervisor, str(student_id))
        assert sorted(s["sessionId"] for s in older) == sorted(
            s["sessionId"] for s in before["sessions"] if s["sessionId"] not in kept
        )
        assert [s["startsAt"][:7] for s in older] == sorted(
            (s["startsAt"][:7] for s in older), reverse=True
        )


def test_older_sessions_are_shown_only_to_whom_the_overview_is(stores: Stores) -> None:
    year = stores.year
    student = year.student
    own = access.student_sessions(stores.bounded, student, student.user_id, None).data
    assert own["studentId"] == str(student.user_id)
    other = Actor(user_id=year.student_ids[1], role=Role.STUDENT, centre_id=year.centre_id)
    stranger = Actor(user_id=year.supervisor.user_id, role=Role.CENTER_SUPERVISOR, centre_id="x")
    for actor in (other, stranger):
        with pytest.raises(access.NotVisible):
            access.student_sessions(stores.bounded, actor, student.user_id, None)


def test_my_day_reads_the_alert_inputs_of_each_student_and_shows_the_same(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    year = stores.year
    full = {d.key: d.doc for d in stores.everything.centre_docs(STUDENT, year.centre_id)}
    window = {d.key: d.doc for d in stores.bounded.centre_docs(STUDENT, year.centre_id)}
    kept = {d.key: d.doc for d in stores.bounded.centre_docs(STUDENT_ALERTS, year.centre_id)}
    assert set(kept) == set(full)
    for at in (NOW, NOW + timedelta(days=9), NOW + timedelta(days=400)):
        for key, student in full.items():
            assert risk_from(kept[key], at) == risk_of(student, at), key
            # What My Day worked out before from the copy it read (``student_risk``).
            assert risk_from(kept[key], at) == risk_of(risk_inputs(window[key]), at), key
            assert kept[key].absences == [
                AbsentFrom(session_id=s.session_id, title=s.title, starts_at=s.starts_at)
                for s in absence_streak(student)
            ], key
    assert any(k.absences for k in kept.values()) and any(k.percents for k in kept.values())
    tutors = [Actor(user_id=t, role=Role.TEACHER, centre_id=year.centre_id) for t in year.tutor_ids]
    shown = [access.my_day(stores.bounded, tutor, None, NOW).data for tutor in tutors]
    with monkeypatch.context() as patch:
        patch.setattr(access, "MY_DAY_STUDENTS", (STUDENT,))  # every session, as before
        assert shown == [
            access.my_day(stores.everything, tutor, None, NOW).data for tutor in tutors
        ]
    assert any(day["alerts"] for day in shown)


def test_my_day_reads_a_store_projected_before_the_alert_inputs_were_kept(
    stores: Stores, tmp_path: Path
) -> None:
    """A store written by the earlier release holds ``student_risk`` copies and no
    ``student_alerts``: My Day works the alerts out from those copies, and from a student's
    whole document where not even a copy was written."""
    year = stores.year
    earlier = read_store(tmp_path, "earlier.sqlite")
    rows, students = _stored_without_alerts(stores.bounded)
    copies = [
        StoredDoc(STUDENT_RISK, d.key, d.centre_id, d.version, risk_inputs(d.doc))
        for d in students[: len(students) // 2]
    ]
    with earlier.transaction() as tx:
        tx.put_many([*rows, *copies])
    assert copies and len(copies) < len(students)
    tutors = [Actor(user_id=t, role=Role.TEACHER, centre_id=year.centre_id) for t in year.tutor_ids]
    for at in (NOW, NOW + timedelta(days=9)):
        assert [access.my_day(earlier, tutor, None, at).data for tutor in tutors] == [
            access.my_day(stores.bounded, tutor, None, at).data for tutor in tutors
        ]
    earlier.close()


def test_the_overview_reads_the_risk_from_the_alert_inputs_of_the_document_s_version(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff's overview works the risk score out from the ``student_alerts`` document when it
    is of the student document's version (the projection writes both in the same batches);
    from the student's document when there is none (a store projected before they were kept)
    or it is of another version (written later than the document: read as if absent)."""
    year = stores.year
    times = (NOW, NOW + timedelta(days=9), NOW + timedelta(days=400))
    readers = (
        year.supervisor,
        *(Actor(user_id=s, role=Role.STUDENT, centre_id=year.centre_id) for s in year.student_ids),
    )

    def overviews(store: ReadStore) -> list[dict[str, Any]]:
        return [
            access.student_overview(store, actor, student_id, at).data
            for at in times
            for actor in readers
            for student_id in year.student_ids
            if actor.role is not Role.STUDENT or actor.user_id == student_id
        ]

    expected = overviews(stores.bounded)
    assert any(o.get("risk", {}).get("reasons") for o in expected)
    with monkeypatch.context() as patch:
        # Worked out from the document (the other way) only when the inputs cannot be read.
        patch.setattr(student_views, "risk_of", lambda *_: pytest.fail("risk from the document"))
        assert overviews(stores.bounded) == expected
    rows, students = _stored_without_alerts(stores.bounded)
    # Half the students have inputs of another version, and wrong ones: they must not be read.
    others = [
        StoredDoc(
            STUDENT_ALERTS,
            d.key,
            d.centre_id,
            d.version + 1,
            StudentAlerts(
                student_id=d.key,
                centre_id=d.centre_id,
                absences=[AbsentFrom(session_id="x", starts_at=NOW.isoformat(), title="x")] * 3,
            ),
        )
        for d in students[: len(students) // 2]
    ]
    earlier = read_store(tmp_path, "earlier.sqlite")
    with earlier.transaction() as tx:
        tx.put_many([*rows, *others])
    assert others and len(others) < len(students)
    assert overviews(earlier) == expected
    earlier.close()


def _listed_as_the_rule_says(sessions: list[StudentSession]) -> list[StudentSession]:
    """The overview's sessions as the rule reads: oldest first, those still to come or
    running, those with something open, and the latest ``STUDENT_RECENT_SESSIONS`` of the
    others."""
    ordered = sorted(sessions, key=lambda s: (s.starts_at, s.session_id))

    def shown(s: StudentSession) -> bool:
        return s.status in (ev.SessionStatus.SCHEDULED, ev.SessionStatus.LIVE) or any(
            w.status in (ev.WorkStatus.ASSIGNED, ev.WorkStatus.IN_PROGRESS) for w in s.work.values()
        )

    over = [s.session_id for s in ordered if not shown(s)]
    latest = set(over[-STUDENT_RECENT_SESSIONS:])
    return [s for s in ordered if shown(s) or s.session_id in latest]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5),
            st.sampled_from(list(ev.SessionStatus)),
            st.lists(st.sampled_from(list(ev.WorkStatus)), max_size=2),
        ),
        max_size=3 * STUDENT_RECENT_SESSIONS,
    )
)
def test_the_overview_lists_the_sessions_the_rule_says(
    drawn: list[tuple[int, ev.SessionStatus, list[ev.WorkStatus]]],
) -> None:
    """Starts that tie (ordered by id), sessions over with and without unfinished work, and
    more or fewer of them than the overview keeps."""
    at = datetime(2026, 5, 1, tzinfo=UTC)
    sessions = []
    for number, (day, status, statuses) in enumerate(drawn):
        starts = iso(at + timedelta(days=day))
        work = {
            f"w{number}-{i}": Work(
                assigned_at=starts,
                assigned_by="tutor",
                auto_gradable=False,
                difficulty=Difficulty.EASY,
                exercise_id="exercise",
                exercise_type=ExerciseType.WORKSHEET,
                max_score=10,
                status=work_status,
                title="work",
                work_id=f"w{number}-{i}",
            )
            for i, work_status in enumerate(statuses)
        }
        sessions.append(
            StudentSession(
                session_id=f"s{number:03}",
                starts_at=starts,
                ends_at=starts,
                enrolled=True,
                status=status,
                title="session",
                work=work,
            )
        )
    assert listed(sessions) == _listed_as_the_rule_says(sessions)


def test_a_session_that_leaves_the_window_lets_an_older_month_s_one_in(tmp_path: Path) -> None:
    """Fourteen sessions over four months, all over: the window lists the latest twelve. A
    catch-up on the latest pins it (listed for what is open, not among the latest), so the
    second oldest, of January, whose month no event touched, comes into the window: the
    window cannot be worked out from the last one and the month that changed alone."""
    store = read_store(tmp_path)
    centre, tutor, student = "gamma", uuid4(), uuid4()
    sessions = [uuid4() for _ in range(14)]
    first = datetime(2026, 1, 5, 15, tzinfo=UTC)
    history: list[ev.Event] = []
    for n, sid in enumerate(sessions):
        starts = first + timedelta(weeks=n)
        common: dict[str, Any] = {
            "centre_id": centre,
            "aggregate_id": sid,
            "session_id": sid,
            "occurred_at": starts,
            "actor_id": tutor,
            "actor_role": Role.TEACHER,
        }
        history += [
            ev.SessionScheduled(
                **common,
                aggregate_version=1,
                title=f"Week {n + 1}",
                tutor_id=tutor,
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
                time_zone="UTC",
                mode=ev.SessionMode.ONLINE,
                meeting_link="https://meet.example.org/w",
            ),
            ev.StudentEnrolled(**common, aggregate_version=2, student_id=student),
            ev.SessionStarted(**common, aggregate_version=3),
            ev.SessionEnded(**common, aggregate_version=4),
        ]
    for position, event in enumerate(history, start=1):  # a batch each, as events come live
        apply_all(store, [(event, position)])

    def window() -> list[str]:
        stored = store.get(STUDENT, str(student))
        assert stored is not None
        return sorted(stored.doc.sessions, key=lambda s: sessions.index(UUID(s)))

    assert window() == [str(s) for s in sessions[2:]]
    catch_up = ev.CatchUpAssigned(
        centre_id=centre,
        aggregate_id=uuid4(),
        aggregate_version=1,
        session_id=sessions[-1],
        occurred_at=first + timedelta(weeks=14),
        actor_id=tutor,
        actor_role=Role.TEACHER,
        student_id=student,
        due_at=first + timedelta(weeks=15),
        reason="missed the quiz",
    )
    apply_all(store, [(catch_up, len(history) + 1)])
    assert window() == [str(s) for s in sessions[1:]]


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``value``, nested ones too."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item)


def _stored_then(row: dict[str, Any], *added: str) -> None:
    """``row`` is a record's JSON in the order it is stored (sorted keys, nested ones too),
    followed by the keys the view ``added``, in that order."""
    stored = list(row)[: len(row) - len(added)]
    assert stored == sorted(stored) and list(row)[len(stored) :] == list(added), list(row)
    for nested in _dicts([row[k] for k in stored]):
        assert list(nested) == sorted(nested), list(nested)


def test_the_overview_shows_each_record_in_its_stored_order_and_shares_no_part(
    stores: Stores,
) -> None:
    """The overview converts the records it shows together, in msgspec's deterministic order,
    and completes the rows in place: each record's keys come out as they are stored (as
    ``as_json`` gives them), followed by what the view adds, and no object of the answer is
    also another part of it (a session shown whole under "today" has its own copies of the
    work and catch-ups listed across sessions)."""
    year = stores.year
    shown = {"today": 0, "work": 0, "catchUps": 0, "notes": 0, "homework": 0}
    for student_id in year.student_ids:
        for actor in (
            year.supervisor,
            Actor(user_id=student_id, role=Role.STUDENT, centre_id=year.centre_id),
        ):
            data = access.student_overview(stores.bounded, actor, student_id, NOW).data
            objects = list(_dicts(data))
            assert len({id(o) for o in objects}) == len(objects)
            for session in data["sessions"]:
                _stored_then(session)
            for session in data["today"]:
                _stored_then(session)
                shown["today"] += 1
            exercises = data["exercises"]["current"] + data["exercises"]["recent"]
            for row in exercises:
                _stored_then(row, "sessionId", "sessionTitle")
            for row in data["catchUps"]:
                _stored_then(row, "sessionId", "sessionTitle", "overdue")
            for row in data["notes"]:
                _stored_then(row, "authorName")
            for row in data["homework"]:
                _stored_then(row, "overdue")
            shown["work"] += len(exercises)
            shown["catchUps"] += len(data["catchUps"])
            shown["notes"] += len(data["notes"])
            shown["homework"] += len(data["homework"])
    assert all(shown.values()), shown
