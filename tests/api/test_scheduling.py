"""Scheduling a tutor's time: overlap warnings, and weekly series without a class."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from itertools import combinations
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.domain.timetable import timetable_week_id
from shared.events import (
    CatchUpAssigned,
    SessionCancelled,
    SessionScheduled,
    StudentEnrolled,
    TimetableSessionBooked,
    TimetableSessionMoved,
    TimetableSessionReleased,
)
from tests.api.helpers import enrol, is_problem, session_body, start
from tests.builders import Centre
from tests.support.history import first_of, history, of_type

SERIES = "/api/v1/sessions/series"
MONDAY = date(2030, 4, 1)
"""The week (UTC) of the sessions below: 10:00 on Tuesday 2 April in Sydney is 23:00 on Monday,
UTC."""


def at(day: str, start_time: str, end_time: str) -> dict[str, str]:
    return {
        "startsAt": f"2030-04-{day}T{start_time}:00+11:00",
        "endsAt": f"2030-04-{day}T{end_time}:00+11:00",
    }


def scheduled(
    client: TestClient[Litestar],
    centre: Centre,
    tutor: str = "tutor",
    *,
    as_: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/sessions",
        json=session_body(centre, tutor, **overrides),
        headers=centre.auth(as_ or tutor),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def warned_about(body: dict[str, Any]) -> list[str]:
    return [w["sessionId"] for w in body["warnings"]]


def series_body(centre: Centre, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "daysOfWeek": [2, 4],
        "startTime": "16:00",
        "durationMinutes": 60,
        "firstDate": "2030-04-01",
        "weeks": 3,
        "timeZone": "Australia/Sydney",
        "title": "Reading and ratios",
        "mode": "ONLINE",
        "meetingLink": "https://meet.example.org/series",
        "tutorId": str(centre["tutor"].user_id),
        "students": [
            {"studentId": str(centre["ann"].user_id), "courseId": "maths", "lessonId": "ratios"},
            {"studentId": str(centre["ben"].user_id), "courseId": "english"},
        ],
    }
    body.update(overrides)
    return body


def test_scheduling_over_another_session_of_the_tutor_succeeds_with_a_warning(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    first = scheduled(client, alpha, title="Fractions", **at("02", "10:00", "11:00"))
    assert first["warnings"] == []
    second = scheduled(client, alpha, **at("02", "10:30", "12:00"))
    assert second["warnings"] == [
        {
            "type": "OVERLAPPING_SESSION",
            "forSessionId": second["sessionId"],
            "sessionId": first["sessionId"],
            "title": "Fractions",
            "startsAt": "2030-04-02T10:00:00+11:00",
            "endsAt": "2030-04-02T11:00:00+11:00",
        }
    ]
    touching = scheduled(client, alpha, **at("02", "09:00", "10:00"))
    assert touching["warnings"] == []
    assert scheduled(client, alpha, "other_tutor", **at("02", "10:00", "11:00"))["warnings"] == []
    by_admin = scheduled(client, alpha, as_="admin", **at("02", "08:30", "11:30"))
    assert warned_about(by_admin) == [
        touching["sessionId"],
        first["sessionId"],
        second["sessionId"],
    ]


def test_cancelled_sessions_free_their_time_and_moves_warn_about_the_new_time(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    auth = alpha.auth("tutor")
    first = scheduled(client, alpha, **at("02", "10:00", "11:00"))["sessionId"]
    second = scheduled(client, alpha, **at("03", "10:00", "11:00"))["sessionId"]
    moved = client.post(
        f"/api/v1/sessions/{second}/reschedule", headers=auth, json=at("02", "10:30", "11:30")
    )
    assert moved.status_code == 200 and warned_about(moved.json()) == [first]
    assert moved.json()["warnings"][0]["forSessionId"] == second
    cancelled = client.post(
        f"/api/v1/sessions/{first}/cancel", headers=auth, json={"reason": "tutor is ill"}
    )
    assert cancelled.status_code == 200 and "warnings" not in cancelled.json()
    again = client.post(
        f"/api/v1/sessions/{second}/reschedule", headers=auth, json=at("02", "10:00", "11:00")
    )
    assert again.json()["warnings"] == []
    assert (
        scheduled(client, alpha, **at("02", "10:00", "10:30"))["warnings"][0]["sessionId"] == second
    )

    week = timetable_week_id(alpha["tutor"].user_id, MONDAY)
    booked = []
    for e in history(centres, week):
        assert isinstance(
            e, TimetableSessionBooked | TimetableSessionMoved | TimetableSessionReleased
        )
        booked.append((e.type_name, str(e.booking.session_id)))
    assert booked[:4] == [
        ("TimetableSessionBooked", first),
        ("TimetableSessionBooked", second),
        ("TimetableSessionMoved", second),
        ("TimetableSessionReleased", first),
    ]


def test_a_session_moved_into_another_week_leaves_the_first(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    session = scheduled(client, alpha, **at("02", "10:00", "11:00"))["sessionId"]
    later = scheduled(client, alpha, **at("09", "10:00", "11:00"))["sessionId"]
    moved = client.post(
        f"/api/v1/sessions/{session}/reschedule",
        headers=alpha.auth("tutor"),
        json=at("09", "10:15", "10:45"),
    )
    assert warned_about(moved.json()) == [later]
    tutor = alpha["tutor"].user_id
    first_week = [e.type_name for e in history(centres, timetable_week_id(tutor, MONDAY))]
    assert first_week == ["TimetableSessionBooked", "TimetableSessionReleased"]
    assert scheduled(client, alpha, **at("02", "10:00", "11:00"))["warnings"] == []


def test_extending_a_live_session_warns_about_the_next_one(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = scheduled(client, alpha, **at("02", "10:00", "11:00"))["sessionId"]
    following = scheduled(client, alpha, **at("02", "11:00", "12:00"))["sessionId"]
    start(client, alpha, session)
    extended = client.post(
        f"/api/v1/sessions/{session}/extend", headers=alpha.auth("tutor"), json={"minutes": 10}
    )
    assert extended.status_code == 200 and warned_about(extended.json()) == [following]
    ended = client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    assert ended.status_code == 200 and "warnings" not in ended.json()


def test_class_sessions_and_rules_warn_about_the_teachers_other_sessions(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    busy = scheduled(client, alpha, **at("01", "16:30", "17:30"))["sessionId"]
    body = {"name": "Reading club", "subject": "ENGLISH", "teacherId": str(alpha["tutor"].user_id)}
    class_id = client.post("/api/v1/classes", json=body, headers=alpha.auth("admin")).json()[
        "classId"
    ]
    one = client.post(
        f"/api/v1/classes/{class_id}/sessions",
        headers=alpha.auth("tutor"),
        json={
            "title": "Reading club",
            "mode": "PHYSICAL",
            "location": "Library",
            **at("01", "17:00", "18:00"),
        },
    )
    assert one.status_code == 201 and warned_about(one.json()) == [busy]
    rule = {
        "daysOfWeek": [1],
        "startTime": "16:00",
        "durationMinutes": 60,
        "firstDate": "2030-04-01",
        "weeks": 2,
        "timeZone": "Australia/Sydney",
        "title": "Reading club",
        "mode": "PHYSICAL",
        "location": "Library",
    }
    ruled = client.post(
        f"/api/v1/classes/{class_id}/schedule-rules", json=rule, headers=alpha.auth("admin")
    )
    assert ruled.status_code == 201, ruled.text
    first = ruled.json()["sessionIds"][0]
    assert [(w["forSessionId"], w["sessionId"]) for w in ruled.json()["warnings"]] == [
        (first, busy)
    ]


def test_concurrent_schedulings_for_one_tutor_each_see_the_others(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    def schedule_one(minute: int) -> dict[str, Any]:
        response = client.post(
            "/api/v1/sessions",
            headers=alpha.auth("tutor"),
            json=session_body(alpha, **at("02", f"10:{minute:02d}", "11:30")),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(schedule_one, [0, 10, 20, 30]))
    warned = {frozenset((b["sessionId"], other)) for b in bodies for other in warned_about(b)}
    assert sum(len(b["warnings"]) for b in bodies) == 6
    assert warned == {frozenset(pair) for pair in combinations([b["sessionId"] for b in bodies], 2)}


def test_a_weekly_series_schedules_every_session_with_the_same_students(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    busy = scheduled(client, alpha, **at("04", "16:30", "17:00"))["sessionId"]
    response = client.post(SERIES, json=series_body(alpha), headers=alpha.auth("tutor"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (len(body["sessionIds"]), body["enrolled"], body["tutorId"]) == (
        6,
        2,
        str(alpha["tutor"].user_id),
    )
    assert [(w["forSessionId"], w["sessionId"]) for w in body["warnings"]] == [
        (body["sessionIds"][1], busy)
    ]
    recorded = history(centres, UUID(body["sessionIds"][0]))
    scheduled_first = first_of(recorded, SessionScheduled)
    assert scheduled_first.starts_at.isoformat() == "2030-04-02T16:00:00+11:00"
    assert scheduled_first.class_id is None
    enrolments = of_type(recorded, StudentEnrolled)
    assert len(enrolments) == len(recorded) - 1
    enrolled = [(str(e.student_id), e.course_id, e.lesson_id) for e in enrolments]
    assert enrolled == [
        (str(alpha["ann"].user_id), "maths", "ratios"),
        (str(alpha["ben"].user_id), "english", None),
    ]
    last = first_of(history(centres, UUID(body["sessionIds"][-1])), SessionScheduled)
    assert last.starts_at.isoformat() == "2030-04-18T16:00:00+10:00"
    again = client.post(
        SERIES, json=series_body(alpha, students=[]), headers=alpha.auth("supervisor")
    )
    assert again.status_code == 201 and len(again.json()["warnings"]) == 7
    enrol(client, alpha, again.json()["sessionIds"][0], "cal")


def test_a_series_is_scheduled_once_per_idempotency_key(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    headers = alpha.auth("admin") | {"Idempotency-Key": "term-3-series"}
    first = client.post(SERIES, json=series_body(alpha), headers=headers)
    position = centres.position
    replay = client.post(SERIES, json=series_body(alpha), headers=headers)
    assert (
        replay.json()["sessionIds"] == first.json()["sessionIds"] and centres.position == position
    )
    assert replay.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("handle", ["finance", "parent", "ann"])
def test_roles_that_do_not_schedule_may_not_schedule_a_series(
    client: TestClient[Litestar],
    alpha: Centre,
    handle: str,
) -> None:
    is_problem(client.post(SERIES, json=series_body(alpha), headers=alpha.auth(handle)), 403)


def test_a_teacher_schedules_a_series_only_for_themselves(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    before = centres.position
    is_problem(client.post(SERIES, json=series_body(alpha), headers=alpha.auth("other_tutor")), 403)
    assert centres.position == before
    own = series_body(alpha, tutorId=None, weeks=1)
    response = client.post(SERIES, json=own, headers=alpha.auth("other_tutor"))
    assert response.status_code == 201 and response.json()["tutorId"] == str(
        alpha["other_tutor"].user_id
    )


def test_unauthenticated_series_are_401(client: TestClient[Litestar], alpha: Centre) -> None:
    is_problem(client.post(SERIES, json=series_body(alpha)), 401)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"daysOfWeek": [0]}, "daysOfWeek"),
        ({"daysOfWeek": []}, "daysOfWeek"),
        ({"startTime": "24:00"}, "startTime"),
        ({"weeks": 27}, "weeks"),
        ({"durationMinutes": 10}, "durationMinutes"),
        ({"firstDate": "2030-02-30"}, "firstDate"),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"title": ""}, "title"),
        ({"mode": "PHYSICAL"}, "location"),
        ({"capacity": 1}, "students"),
        ({"centreId": "beta"}, "centreId"),
        ({"tutorId": "not-a-uuid"}, "tutorId"),
    ],
)
def test_bad_series_are_problems_naming_the_field_and_store_nothing(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    overrides: dict[str, Any],
    field: str,
) -> None:
    before = centres.position
    response = client.post(
        SERIES, json=series_body(alpha, **overrides), headers=alpha.auth("admin")
    )
    problem = is_problem(response, 422)
    assert problem["field"].startswith(field)
    assert centres.position == before


def test_series_students_and_tutors_must_be_people_of_this_centre_in_their_role(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    beta: Centre,
) -> None:
    before = centres.position
    ann = {"studentId": str(alpha["ann"].user_id)}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"students": [ann, ann]}, "students[1].studentId"),
        ({"students": [ann, {"studentId": str(alpha["parent"].user_id)}]}, "students[1].studentId"),
        ({"students": [{"studentId": str(beta["ann"].user_id)}]}, "students[0].studentId"),
        ({"tutorId": str(alpha["ann"].user_id)}, "tutorId"),
        ({"tutorId": str(beta["tutor"].user_id)}, "tutorId"),
    ]
    for overrides, field in cases:
        problem = is_problem(
            client.post(SERIES, json=series_body(alpha, **overrides), headers=alpha.auth("admin")),
            422,
        )
        assert problem["field"] == field, overrides
    assert centres.position == before


def test_another_centres_sessions_are_not_found_and_its_timetable_is_apart(
    client: TestClient[Litestar],
    alpha: Centre,
    beta: Centre,
) -> None:
    theirs = scheduled(client, beta, **at("02", "10:00", "11:00"))["sessionId"]
    is_problem(
        client.post(
            f"/api/v1/sessions/{theirs}/reschedule",
            headers=alpha.auth("admin"),
            json=at("02", "10:00", "11:00"),
        ),
        404,
    )
    is_problem(
        client.post(
            f"/api/v1/sessions/{theirs}/cancel",
            headers=alpha.auth("admin"),
            json={"reason": "not ours"},
        ),
        404,
    )
    assert scheduled(client, alpha, **at("02", "10:00", "11:00"))["warnings"] == []
    series = client.post(
        SERIES,
        json=series_body(beta, daysOfWeek=[2], startTime="10:00", weeks=1),
        headers=beta.auth("tutor"),
    )
    assert warned_about(series.json()) == [theirs]


def test_the_rest_of_a_series_is_cancelled_at_once_and_its_time_given_back(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    beta: Centre,
) -> None:
    series = client.post(SERIES, json=series_body(alpha), headers=alpha.auth("tutor")).json()
    first, *rest = series["sessionIds"]
    start(client, alpha, first)  # the first one has begun: it stands
    cancel = f"{SERIES}/{series['seriesId']}/cancel"
    is_problem(
        client.post(cancel, json={"reason": "term ends"}, headers=alpha.auth("other_tutor")), 403
    )
    is_problem(client.post(cancel, json={"reason": "term ends"}, headers=alpha.auth("ann")), 403)
    is_problem(client.post(cancel, json={"reason": "term ends"}, headers=beta.auth("admin")), 404)
    assert (
        is_problem(client.post(cancel, json={"reason": " "}, headers=alpha.auth("tutor")), 422)[
            "field"
        ]
        == "reason"
    )
    cancelled = client.post(cancel, json={"reason": "term ends"}, headers=alpha.auth("tutor"))
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["cancelledSessionIds"], cancelled.json()["standingSessionIds"]) == (
        rest,
        [first],
    )
    is_problem(client.post(cancel, json={"reason": "again"}, headers=alpha.auth("tutor")), 409)
    for session_id in rest:
        last_event = history(centres, UUID(session_id))[-1]
        assert isinstance(last_event, SessionCancelled) and last_event.reason == "term ends"
    # The time is free again: a session in a cancelled slot warns only about the one that stands.
    again = client.post(
        SERIES, json=series_body(alpha, students=[]), headers=alpha.auth("tutor")
    ).json()
    assert [w["sessionId"] for w in again["warnings"]] == [first]
    is_problem(
        client.post(
            f"{SERIES}/00000000-0000-4000-8000-000000000000/cancel",
            json={"reason": "x"},
            headers=alpha.auth("tutor"),
        ),
        404,
    )


def test_cancelling_a_series_leaves_sessions_whose_time_has_passed_alone(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    body = series_body(
        alpha,
        firstDate=(today - timedelta(days=18)).isoformat(),
        weeks=5,
        daysOfWeek=[(today + timedelta(days=3)).isoweekday()],
        timeZone="UTC",
    )
    series = client.post(SERIES, json=body, headers=alpha.auth("tutor"))
    assert series.status_code == 201, series.text
    cancelled = client.post(
        f"{SERIES}/{series.json()['seriesId']}/cancel",
        json={"reason": "moving"},
        headers=alpha.auth("admin"),
    ).json()

    def starts(session_id: str) -> datetime:
        return first_of(history(centres, UUID(session_id)), SessionScheduled).starts_at

    now = datetime.now(UTC)
    assert cancelled["standingSessionIds"] and cancelled["cancelledSessionIds"]
    assert all(
        starts(i) < now for i in cancelled["standingSessionIds"]
    )  # never started, not rewritten
    assert all(starts(i) > now for i in cancelled["cancelledSessionIds"])
    assert (
        cancelled["standingSessionIds"] + cancelled["cancelledSessionIds"]
        == series.json()["sessionIds"]
    )


def test_a_cancelled_session_sets_its_students_catch_ups_when_asked(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    auth = alpha.auth("tutor")
    plain = scheduled(client, alpha, **at("02", "10:00", "11:00"))["sessionId"]
    enrol(client, alpha, plain, "ann")
    cancelled = client.post(f"/api/v1/sessions/{plain}/cancel", headers=auth, json={"reason": "x"})
    assert cancelled.status_code == 200 and "catchUpsAssigned" not in cancelled.json()

    session = scheduled(client, alpha, **at("03", "10:00", "11:00"))["sessionId"]
    enrol(client, alpha, session, "ann", "ben")
    due = "2030-04-10T17:00:00+10:00"
    body = {"reason": "tutor is ill", "catchUpsDueAt": due}
    is_problem(
        client.post(f"/api/v1/sessions/{session}/cancel", headers=alpha.auth("ann"), json=body), 403
    )
    undated = {"reason": "tutor is ill", "catchUpsDueAt": "2030-04-10T17:00:00"}
    is_problem(client.post(f"/api/v1/sessions/{session}/cancel", headers=auth, json=undated), 422)
    answer = client.post(f"/api/v1/sessions/{session}/cancel", headers=auth, json=body)
    assert answer.status_code == 200, answer.text
    assigned = [UUID(i) for i in answer.json()["catchUpsAssigned"]]
    assert len(assigned) == 2

    stored = history(centres, UUID(session))
    assert len(of_type(stored, SessionCancelled)) == 1
    for catch_up_id in assigned:
        [assignment] = of_type(history(centres, catch_up_id), CatchUpAssigned)
        assert assignment.due_at == datetime.fromisoformat(due)
        assert assignment.reason.endswith("was cancelled")
    students = {
        a.student_id for i in assigned for a in of_type(history(centres, i), CatchUpAssigned)
    }
    assert students == {alpha["ann"].user_id, alpha["ben"].user_id}
    # Cancelled once: a second cancellation is refused and assigns nothing more.
    is_problem(client.post(f"/api/v1/sessions/{session}/cancel", headers=auth, json=body), 409)
