"""Authentication, the role matrix and tenant isolation, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from shared.events import decode
from shared.tenancy.tokens import mint
from tests.api.helpers import enrol, is_problem, live_session, marks, schedule, session_body
from tests.builders import Centre


def test_requests_without_a_valid_token_are_401(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    body = session_body(alpha)
    is_problem(client.post("/api/v1/sessions", json=body), 401)
    is_problem(
        client.post("/api/v1/sessions", json=body, headers={"Authorization": "Bearer nope"}), 401
    )
    expired = mint(alpha["tutor"], ttl=timedelta(seconds=-5))
    response = client.post(
        "/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {expired}"}
    )
    assert "expired" in is_problem(response, 401)["detail"]
    forged = mint(alpha["tutor"], key="someone-elses-secret-0123456789-0123456789")
    is_problem(
        client.post("/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {forged}"}),
        401,
    )


@pytest.mark.parametrize("role", ["parent", "finance", "ann"])
def test_roles_without_the_permission_cannot_schedule(
    client: TestClient[Litestar], alpha: Centre, role: str
) -> None:
    response = client.post("/api/v1/sessions", json=session_body(alpha), headers=alpha.auth(role))
    is_problem(response, 403)
    role_name = {"parent": "a PARENT", "finance": "a FINANCE_ADMIN", "ann": "a STUDENT"}[role]
    assert response.json()["detail"] == f"{role_name} may not schedule sessions"


@pytest.mark.parametrize("role", ["admin", "supervisor", "tutor", "root"])
def test_staff_who_run_sessions_can_schedule(
    client: TestClient[Litestar], alpha: Centre, role: str
) -> None:
    response = client.post("/api/v1/sessions", json=session_body(alpha), headers=alpha.auth(role))
    assert response.status_code == 201, response.text


def test_a_teacher_runs_only_their_own_sessions(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    session = schedule(client, alpha, "tutor")
    other = alpha.auth("other_tutor")
    is_problem(client.post(f"/api/v1/sessions/{session}/start", headers=other), 403)
    is_problem(
        client.post("/api/v1/sessions", json=session_body(alpha, "tutor"), headers=other), 403
    )
    enrol_body = {"studentId": str(alpha["ann"].user_id)}
    is_problem(
        client.post(f"/api/v1/sessions/{session}/enrolments", json=enrol_body, headers=other), 403
    )
    # A supervisor or centre admin may run any session of the centre.
    enrol(client, alpha, session, "ann", as_="admin")
    assert (
        client.post(
            f"/api/v1/sessions/{session}/start", headers=alpha.auth("supervisor")
        ).status_code
        == 200
    )


def test_students_and_parents_cannot_mark_attendance(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    session = live_session(client, alpha, "ann")
    for role in ("ann", "parent", "finance"):
        is_problem(
            client.post(
                "/api/academic/attendance/bulk",
                json=marks(alpha, session, ann="PRESENT"),
                headers=alpha.auth(role),
            ),
            403,
        )


def test_only_students_raise_help_and_only_for_themselves(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    session = live_session(client, alpha, "ann")
    is_problem(
        client.post(
            f"/api/v1/sessions/{session}/help-requests", json={}, headers=alpha.auth("tutor")
        ),
        403,
    )
    # A student who is not enrolled has no seat to ask from.
    is_problem(
        client.post(
            f"/api/v1/sessions/{session}/help-requests", json={}, headers=alpha.auth("ben")
        ),
        409,
    )


def test_another_centre_cannot_see_or_touch_a_session(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    beta: Centre,
) -> None:
    session = live_session(client, alpha, "ann")
    before = centres.position
    for handle in ("admin", "supervisor", "tutor"):
        response = client.post(f"/api/v1/sessions/{session}/end", headers=beta.auth(handle))
        is_problem(response, 404)
    is_problem(
        client.post(
            "/api/academic/attendance/bulk",
            json=marks(alpha, session, ann="ABSENT"),
            headers=beta.auth("admin"),
        ),
        404,
    )
    is_problem(
        client.post(f"/api/v1/sessions/{session}/help-requests", json={}, headers=beta.auth("ann")),
        404,
    )
    # Centre B's admin cannot enrol centre A's student into a centre B session either.
    beta_session = schedule(client, beta)
    response = client.post(
        f"/api/v1/sessions/{beta_session}/enrolments",
        json={"studentId": str(alpha["ben"].user_id)},
        headers=beta.auth("admin"),
    )
    assert is_problem(response, 422)["field"] == "studentId"
    # Only centre B's own scheduling was stored: its session, and its tutor's timetable.
    stored = centres.recorder.select_notifications(before + 1, 100)
    assert {n.topic for n in stored} == {"SessionScheduled", "TimetableSessionBooked"}
    assert {decode(n.state).centre_id for n in stored} == {"beta"}


def test_the_centre_comes_only_from_the_token(
    client: TestClient[Litestar], alpha: Centre, beta: Centre
) -> None:
    body = session_body(alpha) | {"centreId": "beta"}
    assert (
        is_problem(client.post("/api/v1/sessions", json=body, headers=alpha.auth("tutor")), 422)[
            "field"
        ]
        == "centreId"
    )
    header = {"X-Acting-Centre": "beta"} | alpha.auth("admin")
    is_problem(client.post("/api/v1/sessions", json=session_body(alpha), headers=header), 403)


def test_a_super_admin_acts_in_another_centre_only_when_naming_it(
    client: TestClient[Litestar],
    alpha: Centre,
    beta: Centre,
) -> None:
    session = schedule(client, alpha)
    root_of_beta = beta.auth("root")
    is_problem(
        client.post(
            f"/api/v1/sessions/{session}/cancel", json={"reason": "x"}, headers=root_of_beta
        ),
        404,
    )
    explicit = root_of_beta | {"X-Acting-Centre": "alpha"}
    response = client.post(
        f"/api/v1/sessions/{session}/cancel", json={"reason": "storm"}, headers=explicit
    )
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"


def test_only_a_super_admin_registers_centres(client: TestClient[Litestar], alpha: Centre) -> None:
    body = {"centreId": "gamma", "name": "Gamma", "timeZone": "Europe/London"}
    is_problem(client.post("/api/v1/centres", json=body, headers=alpha.auth("admin")), 403)
    response = client.post("/api/v1/centres", json=body, headers=alpha.auth("root"))
    assert response.status_code == 201
    is_problem(client.post("/api/v1/centres", json=body, headers=alpha.auth("root")), 409)


def test_who_may_not_act_learns_nothing_about_the_body(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    is_problem(client.post("/api/v1/sessions", json={}, headers=alpha.auth("parent")), 403)
    is_problem(client.post("/api/v1/sessions", json={"title": 7}), 401)
