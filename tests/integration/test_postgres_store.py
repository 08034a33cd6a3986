"""The command side on a real PostgreSQL event store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
from litestar.testing import TestClient

from services.command.application import AttendanceMark, TutoringCentres
from services.command.domain.aggregate import RuleViolated
from services.command.http.app import create_app
from shared.events import AttendanceStatus, CatchUpAssigned, decode
from tests.api.helpers import enrol, live_session, marks, schedule, session_body
from tests.builders import Centre, register_centre, session_id, plan

pytestmark = pytest.mark.integration


@pytest.fixture
def alpha(pg_centres: TutoringCentres) -> Centre:
    return register_centre(pg_centres, "alpha")


@pytest.fixture
def client(pg_centres: TutoringCentres) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(pg_centres)) as test_client:
        yield test_client


def test_absence_and_catch_up_commit_together_on_postgres(
    pg_centres: TutoringCentres, alpha: Centre
) -> None:
    session = session_id(pg_centres.schedule_session(alpha["tutor"], plan()).body)
    pg_centres.enrol_student(alpha["tutor"], session, alpha["ann"].user_id)
    pg_centres.start_session(alpha["tutor"], session)
    result = pg_centres.mark_attendance(
        alpha["tutor"], session, [AttendanceMark(alpha["ann"].user_id, AttendanceStatus.ABSENT)])
    last_two = pg_centres.recorder.select_notifications(result.position - 1, 2)
    assert [n.topic for n in last_two] == ["AttendanceMarked", "CatchUpAssigned"]
    catch_up = decode(last_two[1].state)
    assert isinstance(catch_up, CatchUpAssigned) and catch_up.centre_id == "alpha"


def test_concurrent_http_commands_on_postgres_conflict_instead_of_losing_updates(
    client: TestClient, pg_centres: TutoringCentres, alpha: Centre  # type: ignore[type-arg]
) -> None:
    session = schedule(client, alpha, capacity=3)
    students = ["ann", "ben", "cal", "dee", "eve", "fay"]

    def enrol_one(student: str) -> int:
        return client.post(f"/api/v1/sessions/{session}/enrolments",
                           json={"studentId": str(alpha[student].user_id)},
                           headers=alpha.auth("tutor")).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(enrol_one, students))
    assert codes.count(201) == 3 and set(codes) <= {201, 409}
    history = list(pg_centres.events.get(UUID(session)))
    assert [e.aggregate_version for e in history] == [1, 2, 3, 4]


def test_five_students_and_their_tutor_at_once_on_postgres(
    client: TestClient, pg_centres: TutoringCentres, alpha: Centre  # type: ignore[type-arg]
) -> None:
    students = ["ann", "ben", "cal", "dee", "eve"]
    session = live_session(client, alpha, *students)

    def act(who: str) -> int:
        if who == "tutor":
            return client.post("/api/academic/attendance/bulk",
                               json=marks(alpha, session, **dict.fromkeys(students, "PRESENT")),
                               headers=alpha.auth("tutor")).status_code
        return client.post(f"/api/v1/sessions/{session}/help-requests", json={"priority": "HIGH"},
                           headers=alpha.auth(who)).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = dict(zip(["tutor", *students], pool.map(act, ["tutor", *students]), strict=True))
    assert codes == {"tutor": 200, **dict.fromkeys(students, 201)}


def test_registering_the_same_person_twice_is_a_conflict(pg_centres: TutoringCentres, alpha: Centre) -> None:
    from shared.tenancy import Role

    with pytest.raises(RuleViolated):
        pg_centres.register_person(alpha["admin"], name="Ann again", email="ANN@alpha.example",
                                   role=Role.STUDENT)


def test_idempotent_retries_race_safely_on_postgres(
    client: TestClient, pg_centres: TutoringCentres, alpha: Centre  # type: ignore[type-arg]
) -> None:
    headers = alpha.auth("tutor") | {"Idempotency-Key": "same-click"}
    body = session_body(alpha)

    def send(_: int) -> tuple[int, str]:
        response = client.post("/api/v1/sessions", json=body, headers=headers)
        return response.status_code, response.json()["sessionId"]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(send, range(4)))
    assert {code for code, _ in results} == {201}
    assert len({sid for _, sid in results}) == 1
    scheduled = [n for n in pg_centres.recorder.select_notifications(1, 1000)
                 if n.topic == "SessionScheduled"]
    assert len(scheduled) == 1
    enrol(client, alpha, results[0][1], "ann")
