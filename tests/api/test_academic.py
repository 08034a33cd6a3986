"""Academic profiles: assessing subjects, changing working levels, overriding the content
sequence."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.domain.academic import academic_profile_id
from shared.events import (
    ContentAssigned,
    ContentAssignmentWithdrawn,
    Event,
    SubjectAssessed,
    WorkingLevelChanged,
)
from tests.api.helpers import enrol, is_problem, schedule
from tests.builders import Centre
from tests.support import history as recorded
from tests.support.privacy import opened

MATHS = "algebra-fundamentals"
STAFF = ("tutor", "other_tutor", "supervisor", "admin", "root")
NOT_ALLOWED = ("parent", "ann", "finance")


def url(centre: Centre, student: str, path: str) -> str:
    return f"/api/v1/students/{centre[student].user_id}/{path}"


def history(centres: TutoringCentres, centre: Centre, student: str) -> list[Event]:
    return recorded.history(centres, academic_profile_id(centre[student].user_id))


def assess(
    client: TestClient[Litestar],
    centre: Centre,
    student: str = "ann",
    as_: str = "tutor",
    **body: Any,
) -> Any:
    return client.post(
        url(centre, student, "assessments"),
        headers=centre.auth(as_),
        json={"courseId": MATHS, "schoolGrade": 5, "workingLevel": 3} | body,
    )


def change(
    client: TestClient[Litestar],
    centre: Centre,
    level: int,
    change_type: str = "TUTOR_OVERRIDE",
    student: str = "ann",
    as_: str = "tutor",
    **body: Any,
) -> Any:
    return client.post(
        url(centre, student, "working-level"),
        headers=centre.auth(as_),
        json={
            "courseId": MATHS,
            "level": level,
            "changeType": change_type,
            "reason": "Placement review",
        }
        | body,
    )


def assign(
    client: TestClient[Litestar],
    centre: Centre,
    student: str = "ann",
    as_: str = "tutor",
    **body: Any,
) -> Any:
    return client.post(
        url(centre, student, "content-assignments"),
        headers=centre.auth(as_),
        json={"courseId": MATHS, "lessonId": "fractions", "reason": "Gap in fractions"} | body,
    )


def withdraw(
    client: TestClient[Litestar],
    centre: Centre,
    assignment: str,
    student: str = "ann",
    as_: str = "tutor",
    reason: str = "Covered in class",
) -> Any:
    return client.post(
        url(centre, student, f"content-assignments/{assignment}/withdraw"),
        headers=centre.auth(as_),
        json={"reason": reason},
    )


def test_staff_assess_a_subject_and_change_its_working_level_with_a_reason(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    first = assess(client, alpha, notes="Placement test")
    assert first.status_code == 201, first.text
    assert first.json() | {"position": 0} == {
        "studentId": str(alpha["ann"].user_id),
        "courseId": MATHS,
        "schoolGrade": 5,
        "workingLevel": 3,
        "position": 0,
    }
    again = assess(client, alpha, as_="supervisor", schoolGrade=6)
    assert again.status_code == 200 and again.json()["schoolGrade"] == 6
    documented = client.get("/schema/openapi.json").json()["paths"]
    answers = documented["/api/v1/students/{student_id}/assessments"]["post"]["responses"]
    assert answers["200"]["content"] == answers["201"]["content"]  # both answers, one shape
    assert answers["200"]["headers"] == answers["201"]["headers"]
    advanced = change(client, alpha, 4, "LEVEL_ADVANCEMENT", as_="admin")
    assert advanced.status_code == 200 and advanced.json()["workingLevel"] == 4
    assert change(client, alpha, 2, "LEVEL_REGRESSION", as_="other_tutor").status_code == 200
    assert change(client, alpha, 5, "DIAGNOSTIC_TEST", as_="root").status_code == 200
    events = history(centres, alpha, "ann")
    assert [e.type_name for e in events] == [
        "SubjectAssessed",
        "SubjectAssessed",
        "WorkingLevelChanged",
        "WorkingLevelChanged",
        "WorkingLevelChanged",
    ]
    levels = recorded.of_type(events, WorkingLevelChanged)
    assert [(e.previous_level, e.new_level, e.change_type) for e in levels] == [
        (3, 4, "LEVEL_ADVANCEMENT"),
        (4, 2, "LEVEL_REGRESSION"),
        (2, 5, "DIAGNOSTIC_TEST"),
    ]
    reassessed = events[1]
    assert isinstance(reassessed, SubjectAssessed)
    assert reassessed.previous_working_level == 3 and levels[0].reason == "Placement review"
    assert [e.actor_role for e in events] == [
        "TEACHER",
        "CENTER_SUPERVISOR",
        "CENTER_ADMIN",
        "TEACHER",
        "SUPER_ADMIN",
    ]


def test_a_new_assignment_supersedes_the_active_one_and_can_be_withdrawn(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    session = schedule(client, alpha)
    enrol(client, alpha, session, "ann")
    first = assign(client, alpha, exerciseId="fractions-3", sessionId=session)
    assert first.status_code == 201, first.text
    assert first.json()["replaces"] is None and first.json()["active"] is True
    reading = assign(client, alpha, courseId="reading", lessonId=None, exerciseId="inference-1")
    second = assign(client, alpha, as_="supervisor", lessonId="ratios")
    assert second.json()["replaces"] == first.json()["assignmentId"]
    is_problem(withdraw(client, alpha, first.json()["assignmentId"]), 409)  # superseded
    withdrawn = withdraw(client, alpha, second.json()["assignmentId"], as_="other_tutor")
    assert withdrawn.status_code == 200 and withdrawn.json()["active"] is False
    is_problem(withdraw(client, alpha, second.json()["assignmentId"]), 409)  # already withdrawn
    third = assign(client, alpha)
    assert third.json()["replaces"] is None  # nothing active left in the course
    events = history(centres, alpha, "ann")
    assert [e.type_name for e in events] == ["ContentAssigned"] * 3 + [
        "ContentAssignmentWithdrawn",
        "ContentAssigned",
    ]
    assigned, withdrawn_event = events[0], events[3]
    assert isinstance(assigned, ContentAssigned)
    assert assigned.session_id == UUID(session) and assigned.exercise_id == "fractions-3"
    assert isinstance(withdrawn_event, ContentAssignmentWithdrawn)
    assert withdrawn_event.reason == "Covered in class"
    assert reading.json()["courseId"] == "reading"


def test_level_changes_that_are_not_possible_are_conflicts(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    is_problem(change(client, alpha, 4), 409)  # never assessed
    assess(client, alpha)
    assert "already" in is_problem(change(client, alpha, 3), 409)["detail"]
    assert [e.type_name for e in history(centres, alpha, "ann")] == ["SubjectAssessed"]


@pytest.mark.parametrize("who", NOT_ALLOWED)
def test_parents_students_and_finance_may_not_change_profiles(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    who: str,
) -> None:
    assess(client, alpha)
    assignment = assign(client, alpha).json()["assignmentId"]
    is_problem(assess(client, alpha, as_=who), 403)
    is_problem(change(client, alpha, 4, as_=who), 403)
    is_problem(assign(client, alpha, as_=who), 403)
    is_problem(withdraw(client, alpha, assignment, as_=who), 403)
    assert len(history(centres, alpha, "ann")) == 2


@pytest.mark.parametrize(
    ("send", "field"),
    [
        (lambda c, a: assess(c, a, schoolGrade=13), "schoolGrade"),
        (lambda c, a: assess(c, a, workingLevel=-1), "workingLevel"),
        (lambda c, a: assess(c, a, workingLevel="three"), "workingLevel"),
        (lambda c, a: assess(c, a, courseId=""), "courseId"),
        (lambda c, a: assess(c, a, courseId="   "), "courseId"),
        (lambda c, a: assess(c, a, notes="x" * 2001), "notes"),
        (lambda c, a: assess(c, a, centreId="beta"), "centreId"),
        (lambda c, a: change(c, a, 4, reason=""), "reason"),
        (lambda c, a: change(c, a, 4, reason="   "), "reason"),
        (lambda c, a: change(c, a, 4, reason="x" * 2001), "reason"),
        (lambda c, a: change(c, a, 4, "ASSESSMENT_RESULT"), "changeType"),
        (lambda c, a: change(c, a, 4, "PROMOTION"), "changeType"),
        (lambda c, a: change(c, a, 2, "LEVEL_ADVANCEMENT"), "changeType"),
        (lambda c, a: change(c, a, 4, "LEVEL_REGRESSION"), "changeType"),
        (lambda c, a: change(c, a, 99), "level"),
        (lambda c, a: assign(c, a, lessonId=None), "lessonId"),
        (lambda c, a: assign(c, a, reason=" "), "reason"),
        (lambda c, a: assign(c, a, exerciseId="x" * 101), "exerciseId"),
        (lambda c, a: assign(c, a, sessionId=str(uuid4())), "sessionId"),
        (lambda c, a: assign(c, a, sessionId="not-a-uuid"), "sessionId"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    send: Any,
    field: str,
) -> None:
    assert assess(client, alpha).status_code == 201
    assert is_problem(send(client, alpha), 422)["field"] == field
    assert len(history(centres, alpha, "ann")) == 1


def test_an_assignment_for_a_session_needs_the_student_enrolled_in_it(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = schedule(client, alpha)
    enrol(client, alpha, session, "ben")
    assert is_problem(assign(client, alpha, sessionId=session), 422)["field"] == "sessionId"
    assert is_problem(
        client.post(
            url(alpha, "ann", "content-assignments"),
            content=b"{not json",
            headers=alpha.auth("tutor"),
        ),
        400,
    )


def test_other_centres_students_and_people_who_are_not_students_are_not_found(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    beta: Centre,
) -> None:
    assess(client, alpha)
    assignment = assign(client, alpha).json()["assignmentId"]
    for who in ("tutor", "admin"):
        headers = beta.auth(who)
        is_problem(
            client.post(
                url(alpha, "ann", "assessments"),
                headers=headers,
                json={"courseId": MATHS, "schoolGrade": 5, "workingLevel": 3},
            ),
            404,
        )
        is_problem(
            client.post(
                url(alpha, "ann", "working-level"),
                headers=headers,
                json={"courseId": MATHS, "level": 4, "changeType": "TUTOR_OVERRIDE", "reason": "x"},
            ),
            404,
        )
        is_problem(
            client.post(
                url(alpha, "ann", "content-assignments"),
                headers=headers,
                json={"courseId": MATHS, "lessonId": "a", "reason": "x"},
            ),
            404,
        )
        is_problem(
            client.post(
                url(alpha, "ann", f"content-assignments/{assignment}/withdraw"),
                headers=headers,
                json={"reason": "x"},
            ),
            404,
        )
    is_problem(assess(client, alpha, student="parent"), 404)
    is_problem(assess(client, alpha, student="tutor"), 404)
    is_problem(
        client.post(
            f"/api/v1/students/{uuid4()}/assessments",
            headers=alpha.auth("tutor"),
            json={"courseId": MATHS, "schoolGrade": 5, "workingLevel": 3},
        ),
        404,
    )
    is_problem(withdraw(client, alpha, assignment, student="ben"), 404)  # not Ben's assignment
    is_problem(withdraw(client, alpha, str(uuid4())), 404)
    assert [e.type_name for e in history(centres, alpha, "ann")] == [
        "SubjectAssessed",
        "ContentAssigned",
    ]
    assert history(centres, beta, "ann") == []  # beta's Ann is another person
    assert history(centres, alpha, "ben") == []


def test_concurrent_level_changes_conflict_instead_of_overwriting(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    assess(client, alpha, workingLevel=3)
    levels = [4, 4, 4, 4, 5, 5]

    def send(level: int) -> int:
        return int(change(client, alpha, level).status_code)

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(send, levels))
    assert set(codes) <= {200, 409} and 200 in codes
    changes = recorded.of_type(history(centres, alpha, "ann")[1:], WorkingLevelChanged)
    assert len(changes) == len(history(centres, alpha, "ann")) - 1 == codes.count(200)
    # Every change was decided against the level recorded just before it: none was lost.
    assert [e.previous_level for e in changes] == [3] + [e.new_level for e in changes[:-1]]
    assert all(e.previous_level != e.new_level for e in changes)


def test_a_retry_with_the_same_idempotency_key_assigns_once(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    headers = alpha.auth("tutor") | {"Idempotency-Key": "assign-fractions"}
    body = {"courseId": MATHS, "lessonId": "fractions", "reason": "Gap in fractions"}
    first = client.post(url(alpha, "ann", "content-assignments"), headers=headers, json=body)
    second = client.post(url(alpha, "ann", "content-assignments"), headers=headers, json=body)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["assignmentId"] == second.json()["assignmentId"]
    assert len(history(centres, alpha, "ann")) == 1


def test_the_overview_shows_staff_everything_and_the_student_no_reasons(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from shared import events
    from shared.readmodels.access import student_overview
    from shared.readmodels.projector import apply_all
    from tests.readside import read_store

    assess(client, alpha, notes="Placement test")
    change(client, alpha, 4, "LEVEL_ADVANCEMENT", reason="Ratios are secure")
    superseded = assign(client, alpha, reason="Internal: struggles with fractions").json()[
        "assignmentId"
    ]
    active = assign(client, alpha, lessonId="ratios", reason="Next step").json()["assignmentId"]
    store = read_store(tmp_path)
    notifications = centres.recorder.select_notifications(1, 10_000)
    apply_all(store, [(events.decode(n.state), n.id) for n in notifications])
    ann = alpha["ann"].user_id
    staff = opened(
        centres, student_overview(store, alpha["tutor"], ann, datetime.now(UTC)).data, "alpha"
    )
    own = opened(
        centres, student_overview(store, alpha["ann"], ann, datetime.now(UTC)).data, "alpha"
    )
    (subject,) = staff["academicProfile"]
    assert (subject["schoolGrade"], subject["workingLevel"], subject["gap"]) == (5, 4, 1)
    assert [h["changeType"] for h in subject["history"]] == [
        "LEVEL_ADVANCEMENT",
        "ASSESSMENT_RESULT",
    ]
    assert subject["history"][0]["reason"] == "Ratios are secure"
    assert subject["history"][0]["changedByName"] == "Tutor"
    assert subject["assessmentNotes"] == "Placement test"
    assert [a["assignmentId"] for a in staff["contentAssignments"]] == [active]
    (ended,) = staff["endedContentAssignments"]
    assert (ended["assignmentId"], ended["status"]) == (superseded, "SUPERSEDED")
    assert ended["supersededBy"] == active
    (own_subject,) = own["academicProfile"]
    assert {k: own_subject[k] for k in ("schoolGrade", "workingLevel", "gap")} == {
        "schoolGrade": 5,
        "workingLevel": 4,
        "gap": 1,
    }
    assert "assessmentNotes" not in own_subject and "endedContentAssignments" not in own
    assert all("reason" not in h and "changedBy" not in h for h in own_subject["history"])
    assert [(a["assignmentId"], a["lessonId"]) for a in own["contentAssignments"]] == [
        (active, "ratios")
    ]
    assert "reason" not in own["contentAssignments"][0]
    store.close()
