"""The year-of-history seeder writes a history the domain would have written, that loads and
rebuilds into read models with nothing left over, the same for the same seed."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from services.command.application import TutoringCentres
from services.command.domain.attendance import AttendanceRecord, attendance_record_id
from services.command.domain.session import Session
from services.command.unit_of_work import load as load_aggregate
from services.projections.rebuild import rebuild
from shared.events import SessionStatus
from shared.eventstore import EventStoreSettings
from shared.readmodels.documents import CATCH_UP, SESSION
from shared.settings import load
from tests.bench.year import YearOfHistory, seed_year
from tests.readside import read_store

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)


def _store(folder: Path, name: str) -> TutoringCentres:
    return TutoringCentres(load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / name)}))


def _seed(centres: TutoringCentres) -> YearOfHistory:
    return seed_year(centres, events=5_000, tutors=5, students=50, seed=7, now=NOW)


def test_a_seeded_year_loads_and_rebuilds_without_dead_letters(tmp_path: Path) -> None:
    centres = _store(tmp_path, "events.sqlite")
    year = _seed(centres)

    assert 5_000 <= year.events < 5_500
    assert year.head == year.events
    assert year.sessions > 5 * 3 and year.catch_ups > 0 and year.help_requests > 0
    stored = centres.recorder.select_notifications(0, year.head + 1, inclusive_of_start=False)
    assert len(stored) == year.events
    versions: dict[UUID, list[int]] = defaultdict(list)
    for row in stored:
        versions[UUID(str(row.originator_id))].append(row.originator_version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())

    live = load_aggregate(centres, Session, year.live_session_id)
    assert live.status is SessionStatus.LIVE
    assert live.tutor_id == year.tutor.user_id and live.is_enrolled(year.student.user_id)
    record = load_aggregate(centres, AttendanceRecord, attendance_record_id(year.student.user_id))
    assert len(record.marks) > 1  # the student has sessions behind them

    read = read_store(tmp_path)
    result = rebuild(centres, read, settle_timeout=0)
    assert result.events == year.events
    dump = read.dump(result.generation)
    projected = {UUID(aggregate): version for aggregate, version in dump["rm_versions"]}
    assert projected == {aggregate: len(v) for aggregate, v in versions.items()}
    session = read.get(SESSION, str(year.live_session_id))
    assert session is not None and session.doc.status == SessionStatus.LIVE
    assert len(read.centre_docs(CATCH_UP, year.centre_id)) == year.catch_ups
    read.close()
    centres.close()


def test_the_same_seed_writes_the_same_history(tmp_path: Path) -> None:
    first, second = _store(tmp_path, "a.sqlite"), _store(tmp_path, "b.sqlite")
    a, b = _seed(first), _seed(second)
    assert (a.events, a.live_session_id, a.student) == (b.events, b.live_session_id, b.student)

    def rows(centres: TutoringCentres) -> list[tuple[str, int, str, bytes]]:
        return [
            (str(n.originator_id), n.originator_version, n.topic, n.state)
            for n in centres.recorder.select_notifications(0, a.head + 1)
        ]

    assert rows(first) == rows(second)
    first.close()
    second.close()
