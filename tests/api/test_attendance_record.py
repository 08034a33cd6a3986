"""Marking attendance keeps each student's attendance record, which notices repeated absences:
two sessions marking one student at the same moment conflict on it, and the one retried sees
the other's mark."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.domain.attendance import AttendanceRecord, attendance_record_id
from services.command.domain.session import Session
from shared.events import AttendanceStatus, RepeatedAbsencesNoticed, StudentAttendanceRecorded
from shared.tenancy import Actor
from tests.api.helpers import live_session, marks
from tests.builders import Centre
from tests.support.history import history, of_type

BULK = "/api/academic/attendance/bulk"


def test_two_sessions_marking_one_student_at_once_each_see_the_other(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, third = (live_session(client, alpha, "ann") for _ in range(3))
    answer = client.post(BULK, json=marks(alpha, first, ann="ABSENT"), headers=alpha.auth("tutor"))
    assert answer.status_code == 200, answer.text

    # Both commands load Ann's record before either saves it: one of them must conflict.
    both_loaded = threading.Barrier(2, timeout=20)
    waited = threading.local()
    keep = AttendanceRecord.keep
    calls: list[UUID] = []

    def keep_once_both_loaded(
        record: AttendanceRecord, session: Session, status: AttendanceStatus, *, by: Actor
    ) -> int:
        calls.append(session.id)
        if not getattr(waited, "done", False):
            waited.done = True
            both_loaded.wait()
        return keep(record, session, status, by=by)

    monkeypatch.setattr(AttendanceRecord, "keep", keep_once_both_loaded)

    def absent(session: str) -> int:
        response = client.post(
            BULK, json=marks(alpha, session, ann="ABSENT"), headers=alpha.auth("tutor")
        )
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(absent, [second, third])) == [200, 200]
    assert len(calls) == 3  # one of the two ran again, on a fresh record

    recorded = history(centres, attendance_record_id(alpha["ann"].user_id))
    kept = of_type(recorded, StudentAttendanceRecorded)
    assert {str(e.mark.session_id) for e in kept} == {first, second, third}
    noticed = of_type(recorded, RepeatedAbsencesNoticed)
    # Whichever was saved first made two in a row; the retried one saw it and made three.
    assert sorted(n.absences_in_a_row for n in noticed) == [2, 3]
    assert {str(n.session_id) for n in noticed} == {second, third}
    assert [e.aggregate_version for e in recorded] == list(range(1, len(recorded) + 1))


def test_an_absence_corrected_and_made_again_is_noticed_once(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    first, second = (live_session(client, alpha, "ann", "ben") for _ in range(2))
    for session, statuses in (
        (first, {"ann": "ABSENT", "ben": "ABSENT"}),
        (second, {"ann": "ABSENT", "ben": "PRESENT"}),
        (second, {"ann": "EXCUSED"}),
        (second, {"ann": "ABSENT"}),
    ):
        response = client.post(
            BULK, json=marks(alpha, session, **statuses), headers=alpha.auth("tutor")
        )
        assert response.status_code == 200, response.text
    ann = history(centres, attendance_record_id(alpha["ann"].user_id))
    assert [
        (n.absences_in_a_row, str(n.session_id)) for n in of_type(ann, RepeatedAbsencesNoticed)
    ] == [(2, second)]
    assert len(of_type(ann, StudentAttendanceRecorded)) == 4
    ben = history(centres, attendance_record_id(alpha["ben"].user_id))
    assert of_type(ben, RepeatedAbsencesNoticed) == []
