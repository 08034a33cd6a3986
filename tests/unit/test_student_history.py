"""A student's document may keep only their latest sessions (and older ones with something open),
the others moved to month documents, the overview's totals and risk still counting them. The bound
is off by default (``STUDENT_RECENT_SESSIONS``); these tests set it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.command.application import TutoringCentres
from services.projections.rebuild import rebuild
from shared.eventstore import EventStoreSettings
from shared.readmodels import access
from shared.readmodels.documents import (
    STUDENT,
    STUDENT_RISK,
    ArchivedSessions,
    Student,
    StudentSession,
)
from shared.readmodels.projector import student as student_projector
from shared.readmodels.store import ReadStore
from shared.readmodels.views import absence_streak, risk_of
from shared.settings import load
from shared.tenancy import Actor, Role
from tests.bench.year import YearOfHistory, seed_year
from tests.readside import read_store

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)
KEPT = 12


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ReadStore, ReadStore, YearOfHistory]]:
    """The same history projected with the bound, and (as before it) without one."""
    folder: Path = tmp_path_factory.mktemp("student-history")
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")})
    )
    year = seed_year(centres, events=15_000, tutors=5, students=25, seed=5, now=NOW)
    bounded = read_store(folder, "bounded.sqlite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(student_projector, "STUDENT_RECENT_SESSIONS", KEPT)
        rebuild(centres, bounded, settle_timeout=0)
    unbounded = read_store(folder, "unbounded.sqlite")
    rebuild(centres, unbounded, settle_timeout=0)
    centres.close()
    yield bounded, unbounded, year
    bounded.close()
    unbounded.close()


def _open(session: StudentSession) -> bool:
    return student_projector._pinned(session)


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


def test_the_document_keeps_the_newest_sessions_and_moves_the_rest(
    stores: tuple[ReadStore, ReadStore, YearOfHistory],
) -> None:
    bounded, unbounded, year = stores
    students = {d.key: d.doc for d in bounded.centre_docs(STUDENT, year.centre_id)}
    everything = {d.key: d.doc for d in unbounded.centre_docs(STUDENT, year.centre_id)}
    moved = 0
    for key, full in everything.items():
        kept: Student = students[key]
        newest = sorted(
            (s for s in full.sessions.values() if not _open(s)),
            key=lambda s: (s.starts_at, s.session_id),
        )
        pinned = {s.session_id for s in full.sessions.values() if _open(s)}
        expected = pinned | {s.session_id for s in newest[-(KEPT - len(pinned)) :]}
        if len(full.sessions) <= KEPT:
            expected = set(full.sessions)
        assert set(kept.sessions) == expected, key
        assert all(kept.sessions[k] == full.sessions[k] for k in kept.sessions)
        older = _older(bounded, year.supervisor, key)
        left_out = [s for s in full.sessions.values() if s.session_id not in expected]
        by_month = sorted(left_out, key=lambda s: (s.starts_at, s.session_id))
        by_month.sort(key=lambda s: s.starts_at[:7], reverse=True)  # stable: oldest first within
        assert [s["sessionId"] for s in older] == [s.session_id for s in by_month]
        archived = kept.archived
        if len(full.sessions) > KEPT:
            assert isinstance(archived, ArchivedSessions)
            assert archived.count == len(full.sessions) - len(kept.sessions)
            moved += archived.count
        else:
            assert not isinstance(archived, ArchivedSessions) or archived.count == 0
    assert moved > 0  # the seeded year gives students more than KEPT sessions


def test_the_overview_counts_every_session_as_before(
    stores: tuple[ReadStore, ReadStore, YearOfHistory],
) -> None:
    bounded, unbounded, year = stores
    for student_id in year.student_ids:
        now_bounded = access.student_overview(bounded, year.supervisor, student_id, NOW).data
        before = access.student_overview(unbounded, year.supervisor, student_id, NOW).data
        for field in ("attendanceSummary", "xp", "risk", "today", "homework"):
            assert now_bounded[field] == before[field], (student_id, field)
        kept = {s["sessionId"] for s in now_bounded["sessions"]}
        # The catch-ups of the sessions kept: every open one, the finished ones of late.
        assert now_bounded["catchUps"] == [c for c in before["catchUps"] if c["sessionId"] in kept]
        assert all(
            c["sessionId"] in kept
            for c in before["catchUps"]
            if c["status"] in ("PENDING", "IN_PROGRESS")
        )
        assert now_bounded["sessions"] == [s for s in before["sessions"] if s["sessionId"] in kept]
        assert now_bounded["olderSessions"]["count"] == len(before["sessions"]) - len(kept)
        assert now_bounded["exercises"]["current"] == before["exercises"]["current"]


def test_older_sessions_are_shown_only_to_whom_the_overview_is(
    stores: tuple[ReadStore, ReadStore, YearOfHistory],
) -> None:
    bounded, _, year = stores
    student = year.student
    own = access.student_sessions(bounded, student, student.user_id, None).data
    assert own["studentId"] == str(student.user_id)
    other = Actor(user_id=year.student_ids[1], role=Role.STUDENT, centre_id=year.centre_id)
    stranger = Actor(user_id=year.supervisor.user_id, role=Role.CENTER_SUPERVISOR, centre_id="x")
    for actor in (other, stranger):
        with pytest.raises(access.NotVisible):
            access.student_sessions(bounded, actor, student.user_id, None)


def test_my_day_reads_a_small_copy_of_each_student_and_shows_the_same(
    stores: tuple[ReadStore, ReadStore, YearOfHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    bounded, unbounded, year = stores
    full = {d.key: d.doc for d in unbounded.centre_docs(STUDENT, year.centre_id)}
    small = {d.key: d.doc for d in bounded.centre_docs(STUDENT_RISK, year.centre_id)}
    assert set(small) == set(full)
    for at in (NOW, NOW + timedelta(days=9)):
        for key, student in full.items():
            assert risk_of(small[key], at) == risk_of(student, at), key
            assert [(s.session_id, s.title, s.starts_at) for s in absence_streak(small[key])] == [
                (s.session_id, s.title, s.starts_at) for s in absence_streak(student)
            ], key
    tutors = [Actor(user_id=t, role=Role.TEACHER, centre_id=year.centre_id) for t in year.tutor_ids]
    shown = [access.my_day(bounded, tutor, None, NOW).data for tutor in tutors]
    monkeypatch.setattr(access, "STUDENT_RISK", STUDENT)  # the whole documents, as before
    assert shown == [access.my_day(unbounded, tutor, None, NOW).data for tutor in tutors]
    assert any(day["alerts"] for day in shown)
