"""Every command refuses, up front, a value a later step would choke on: a 422 problem naming
the field, and nothing stored. A year typed as 0202, a session in the year 9999, a time
without an offset, a NUL character in any text, a list or text too long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from tests.api.helpers import enrol, is_problem, live_session, schedule
from tests.builders import Centre

NUL = "a\u0000b"
ESC = "a\u001b[31mb"
LATER = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)


@dataclass
class World:
    """Something of every kind a command can name, in centre alpha."""

    centre: Centre
    live: str
    scheduled: str
    exercise: str
    work: str
    homework: str
    note: str
    cohort: str
    catch_up_session: str
    series: str

    def student(self, handle: str = "ann") -> str:
        return str(self.centre[handle].user_id)


def post(
    client: TestClient[Litestar], centre: Centre, path: str, body: Any, as_: str = "tutor"
) -> Any:
    response = client.post(path, json=body, headers=centre.auth(as_))
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def world(client: TestClient[Litestar], alpha: Centre) -> World:
    live = live_session(client, alpha, "ann", "ben")
    scheduled = schedule(client, alpha)
    enrol(client, alpha, scheduled, "ann")
    exercise = post(
        client,
        alpha,
        "/api/v1/exercises",
        {
            "title": "Essay",
            "courseId": "english",
            "exerciseType": "LONG_ANSWER",
            "questions": [{"questionId": "q1", "prompt": "Why?"}],
        },
    )["exerciseId"]
    work = post(
        client,
        alpha,
        f"/api/v1/sessions/{live}/work",
        {"exerciseId": exercise, "studentIds": [str(alpha["ann"].user_id)]},
    )["work"][0]["workId"]
    post(client, alpha, f"/api/v1/sessions/{live}/work/{work}/start", None, as_="ann")
    homework = post(
        client,
        alpha,
        "/api/v1/homework",
        {
            "studentId": str(alpha["ann"].user_id),
            "title": "Read",
            "exerciseIds": [exercise],
            "dueAt": LATER.isoformat(),
        },
    )["homeworkId"]
    note = post(
        client, alpha, f"/api/v1/students/{alpha['ann'].user_id}/notes", {"content": "Kind"}
    )["noteId"]
    cohort = post(
        client,
        alpha,
        "/api/v1/classes",
        {"name": "Year 5", "subject": "Maths", "teacherId": str(alpha["tutor"].user_id)},
        as_="admin",
    )["classId"]
    series = post(
        client,
        alpha,
        "/api/v1/sessions/series",
        {
            "daysOfWeek": [3],
            "startTime": "16:00",
            "firstDate": (LATER + timedelta(days=7)).date().isoformat(),
            "weeks": 2,
            "title": "Weekly",
            "mode": "ONLINE",
            "meetingLink": "https://m.example.org",
        },
    )["seriesId"]
    return World(alpha, live, scheduled, exercise, work, homework, note, cohort, live, series)


def at(moment: str, hours: float = 1) -> dict[str, str]:
    starts = datetime.fromisoformat(moment)
    return {"startsAt": moment, "endsAt": (starts + timedelta(hours=hours)).isoformat()}


SESSION = {
    "title": "Ratios",
    "mode": "ONLINE",
    "meetingLink": "https://meet.example.org/r",
    **at("2030-03-04T10:00:00+11:00"),
}
RULE = {
    "daysOfWeek": [1],
    "startTime": "16:00",
    "firstDate": "2030-04-01",
    "weeks": 2,
    "title": "Weekly",
    "mode": "ONLINE",
    "meetingLink": "https://meet.example.org/w",
}
QUESTION = {"questionId": "q1", "prompt": "1/2 as a decimal", "acceptedAnswers": ["0.5"]}
EXERCISE = {
    "title": "Halves",
    "courseId": "maths",
    "exerciseType": "NUMERICAL",
    "questions": [QUESTION],
}

# (case, who, path, body, field): the path and body may name things of the world.
CASES: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
    (
        "year typed as 0202",
        "tutor",
        "/api/v1/sessions",
        SESSION | at("0202-12-02T11:00:00+00:00"),
        "startsAt",
    ),
    (
        "the year 9999",
        "tutor",
        "/api/v1/sessions",
        SESSION | at("9999-12-30T10:00:00+00:00"),
        "startsAt",
    ),
    (
        "before 2000",
        "tutor",
        "/api/v1/sessions",
        SESSION | at("1999-12-31T23:00:00+00:00"),
        "startsAt",
    ),
    (
        "ending after 2100",
        "tutor",
        "/api/v1/sessions",
        SESSION | at("2100-12-31T23:30:00+00:00"),
        "endsAt",
    ),
    (
        "no UTC offset",
        "tutor",
        "/api/v1/sessions",
        SESSION | {"startsAt": "2030-03-04T10:00:00", "endsAt": "2030-03-04T11:00:00"},
        "startsAt",
    ),
    (
        "longer than 12 hours",
        "tutor",
        "/api/v1/sessions",
        SESSION | at("2030-03-04T08:00:00+00:00", 12.5),
        "endsAt",
    ),
    ("NUL in a title", "tutor", "/api/v1/sessions", SESSION | {"title": NUL}, "title"),
    (
        "a line break in a location",
        "tutor",
        "/api/v1/sessions",
        SESSION | {"mode": "PHYSICAL", "location": "Room\n1"},
        "location",
    ),
    (
        "an escape in a link",
        "tutor",
        "/api/v1/sessions",
        SESSION | {"meetingLink": "https://m.example.org/" + ESC},
        "meetingLink",
    ),
    (
        "a time zone with NUL",
        "tutor",
        "/api/v1/sessions",
        SESSION | {"timeZone": "UTC\u0000"},
        "timeZone",
    ),
    (
        "rescheduled to 0202",
        "tutor",
        "/api/v1/sessions/{scheduled}/reschedule",
        at("0202-12-02T11:00:00+00:00"),
        "startsAt",
    ),
    (
        "rescheduled without offset",
        "tutor",
        "/api/v1/sessions/{scheduled}/reschedule",
        {"startsAt": "2030-03-04T10:00:00+00:00", "endsAt": "2030-03-04T11:00:00"},
        "endsAt",
    ),
    (
        "rescheduled, a reason with NUL",
        "tutor",
        "/api/v1/sessions/{scheduled}/reschedule",
        at("2030-03-04T10:00:00+00:00") | {"reason": NUL},
        "reason",
    ),
    (
        "a mode change to a location with NUL",
        "tutor",
        "/api/v1/sessions/{scheduled}/mode",
        {"mode": "PHYSICAL", "location": NUL},
        "location",
    ),
    (
        "cancelled for NUL",
        "tutor",
        "/api/v1/sessions/{scheduled}/cancel",
        {"reason": NUL},
        "reason",
    ),
    (
        "enrolled on a course with an escape",
        "tutor",
        "/api/v1/sessions/{scheduled}/enrolments",
        {"studentId": "{ben}", "courseId": ESC},
        "courseId",
    ),
    (
        "a lesson with NUL",
        "tutor",
        "/api/v1/sessions/{live}/enrolments/{ann}/lesson",
        {"lessonId": NUL},
        "lessonId",
    ),
    (
        "a weekly rule in 0202",
        "admin",
        "/api/v1/classes/{cohort}/schedule-rules",
        RULE | {"firstDate": "0202-04-01"},
        "firstDate",
    ),
    (
        "a weekly rule running past 2100",
        "admin",
        "/api/v1/classes/{cohort}/schedule-rules",
        RULE | {"firstDate": "2100-12-25"},
        "firstDate",
    ),
    (
        "weekly sessions longer than 12 hours",
        "admin",
        "/api/v1/classes/{cohort}/schedule-rules",
        RULE | {"durationMinutes": 721},
        "durationMinutes",
    ),
    (
        "a series before 2000",
        "tutor",
        "/api/v1/sessions/series",
        RULE | {"firstDate": "1999-12-06"},
        "firstDate",
    ),
    (
        "a series titled with NUL",
        "tutor",
        "/api/v1/sessions/series",
        RULE | {"title": NUL},
        "title",
    ),
    (
        "a series cancelled for NUL",
        "tutor",
        "/api/v1/sessions/series/{series}/cancel",
        {"reason": NUL},
        "reason",
    ),
    (
        "a class session in 9999",
        "admin",
        "/api/v1/classes/{cohort}/sessions",
        SESSION | at("9999-12-30T10:00:00+00:00"),
        "startsAt",
    ),
    (
        "a class named with NUL",
        "admin",
        "/api/v1/classes",
        {"name": NUL, "subject": "Maths", "teacherId": "{tutor}"},
        "name",
    ),
    (
        "a class updated to a subject with NUL",
        "admin",
        "/api/v1/classes/{cohort}/update",
        {"name": "Year 5", "subject": NUL, "teacherId": "{tutor}"},
        "subject",
    ),
    (
        "a class cancelled for NUL",
        "admin",
        "/api/v1/classes/{cohort}/cancel",
        {"reason": NUL},
        "reason",
    ),
    (
        "attendance notes with NUL",
        "tutor",
        "/api/academic/attendance/bulk",
        {
            "sessionId": "{live}",
            "records": [{"studentId": "{ann}", "status": "PRESENT", "notes": NUL}],
        },
        "records[0].notes",
    ),
    (
        "a help message with NUL",
        "ann",
        "/api/v1/sessions/{live}/help-requests",
        {"message": NUL},
        "message",
    ),
    (
        "help with an exercise id with NUL",
        "ann",
        "/api/v1/sessions/{live}/help-requests",
        {"exerciseId": NUL},
        "exerciseId",
    ),
    (
        "a catch-up due in 0202",
        "tutor",
        "/api/v1/catch-ups",
        {
            "sessionId": "{live}",
            "studentId": "{ann}",
            "dueAt": "0202-12-02T11:00:00Z",
            "reason": "missed",
        },
        "dueAt",
    ),
    (
        "a catch-up due without offset",
        "tutor",
        "/api/v1/catch-ups",
        {
            "sessionId": "{live}",
            "studentId": "{ann}",
            "dueAt": "2030-12-02T11:00:00",
            "reason": "missed",
        },
        "dueAt",
    ),
    (
        "a catch-up for NUL",
        "tutor",
        "/api/v1/catch-ups",
        {
            "sessionId": "{live}",
            "studentId": "{ann}",
            "dueAt": "2030-12-02T11:00:00Z",
            "reason": NUL,
        },
        "reason",
    ),
    ("a note with NUL", "tutor", "/api/v1/students/{ann}/notes", {"content": NUL}, "content"),
    (
        "a note rewritten with NUL",
        "tutor",
        "/api/v1/notes/{note}/edit",
        {"content": NUL},
        "content",
    ),
    ("a note redacted for NUL", "admin", "/api/v1/notes/{note}/redact", {"reason": NUL}, "reason"),
    (
        "an exercise titled with NUL",
        "tutor",
        "/api/v1/exercises",
        EXERCISE | {"title": NUL},
        "title",
    ),
    (
        "a prompt with NUL",
        "tutor",
        "/api/v1/exercises",
        EXERCISE | {"questions": [QUESTION | {"prompt": NUL}]},
        "questions[0].prompt",
    ),
    (
        "an option with NUL",
        "tutor",
        "/api/v1/exercises",
        EXERCISE
        | {"exerciseType": "MULTIPLE_CHOICE", "questions": [QUESTION | {"options": ["0.5", NUL]}]},
        "questions[0].options",
    ),
    (
        "27 options",
        "tutor",
        "/api/v1/exercises",
        EXERCISE
        | {
            "exerciseType": "MULTIPLE_CHOICE",
            "questions": [QUESTION | {"options": ["0.5", *(f"o{i}" for i in range(26))]}],
        },
        "questions[0].options",
    ),
    (
        "instructions with NUL",
        "tutor",
        "/api/v1/exercises",
        EXERCISE | {"instructions": NUL},
        "instructions",
    ),
    (
        "an exercise retired for NUL",
        "tutor",
        "/api/v1/exercises/{exercise}/retire",
        {"reason": NUL},
        "reason",
    ),
    (
        "an answer with NUL",
        "ann",
        "/api/v1/sessions/{live}/work/{work}/submit",
        {"answers": {"q1": NUL}},
        "answers.q1",
    ),
    (
        "homework due after 2100",
        "tutor",
        "/api/v1/homework",
        {
            "studentId": "{ann}",
            "title": "Read",
            "exerciseIds": ["{exercise}"],
            "dueAt": "2101-01-01T00:00:00Z",
        },
        "dueAt",
    ),
    (
        "homework due without offset",
        "tutor",
        "/api/v1/homework",
        {
            "studentId": "{ann}",
            "title": "Read",
            "exerciseIds": ["{exercise}"],
            "dueAt": "2030-01-01T10:00:00",
        },
        "dueAt",
    ),
    (
        "homework titled with NUL",
        "tutor",
        "/api/v1/homework",
        {
            "studentId": "{ann}",
            "title": NUL,
            "exerciseIds": ["{exercise}"],
            "dueAt": LATER.isoformat(),
        },
        "title",
    ),
    (
        "homework notes with NUL",
        "tutor",
        "/api/v1/homework",
        {
            "studentId": "{ann}",
            "title": "Read",
            "exerciseIds": ["{exercise}"],
            "dueAt": LATER.isoformat(),
            "notes": NUL,
        },
        "notes",
    ),
    (
        "homework answered with NUL",
        "ann",
        "/api/v1/homework/{homework}/submit",
        {"answers": {"{exercise}": {"q1": NUL}}},
        "answers.{exercise}.q1",
    ),
    (
        "an assessment of a course with NUL",
        "tutor",
        "/api/v1/students/{ann}/assessments",
        {"courseId": NUL, "schoolGrade": 5, "workingLevel": 3},
        "courseId",
    ),
    (
        "assessment notes with NUL",
        "tutor",
        "/api/v1/students/{ann}/assessments",
        {"courseId": "maths", "schoolGrade": 5, "workingLevel": 3, "notes": NUL},
        "notes",
    ),
    (
        "content assigned for NUL",
        "tutor",
        "/api/v1/students/{ann}/content-assignments",
        {"courseId": "maths", "lessonId": "l1", "reason": NUL},
        "reason",
    ),
    (
        "content: a lesson with an escape",
        "tutor",
        "/api/v1/students/{ann}/content-assignments",
        {"courseId": "maths", "lessonId": ESC, "reason": "gap"},
        "lessonId",
    ),
    (
        "a person named with NUL",
        "admin",
        "/api/v1/people",
        {"name": NUL, "email": "new@alpha.example", "role": "STUDENT"},
        "name",
    ),
    (
        "an e-mail with NUL",
        "admin",
        "/api/v1/people",
        {"name": "New", "email": "new\u0000@alpha.example", "role": "STUDENT"},
        "email",
    ),
    (
        "a centre named with NUL",
        "root",
        "/api/v1/centres",
        {"centreId": "gamma", "name": NUL},
        "name",
    ),
    ("no body at all", "tutor", "/api/v1/sessions", None, "body"),
]


def _fill(value: Any, world: World) -> Any:
    names = {
        "live": world.live,
        "scheduled": world.scheduled,
        "exercise": world.exercise,
        "work": world.work,
        "homework": world.homework,
        "note": world.note,
        "cohort": world.cohort,
        "series": world.series,
        **{h: world.student(h) for h in ("ann", "ben", "tutor")},
    }
    if isinstance(value, str):
        for name, found in names.items():
            value = value.replace("{" + name + "}", found)
        return value
    if isinstance(value, dict):
        return {_fill(k, world): _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


@pytest.mark.parametrize(
    ("who", "path", "body", "field"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_value_a_later_step_would_choke_on_is_refused_naming_the_field(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    world: World,
    who: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    before = centres.position
    kwargs: dict[str, Any] = {} if body is None else {"json": _fill(body, world)}
    response = client.post(_fill(path, world), headers=world.centre.auth(who), **kwargs)
    problem = is_problem(response, 422)
    assert problem["field"] == _fill(field, world)
    assert centres.position == before


def test_a_missing_body_says_so(client: TestClient[Litestar], alpha: Centre) -> None:
    for content in (None, b""):
        response = client.post(
            "/api/v1/sessions",
            content=content,
            headers=alpha.auth("tutor") | {"Content-Type": "application/json"},
        )
        problem = is_problem(response, 422)
        assert problem["field"] == "body" and "body is missing" in problem["detail"]


def test_the_removal_reason_in_the_query_is_checked_too(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    world: World,
) -> None:
    before = centres.position
    response = client.delete(
        f"/api/v1/sessions/{world.live}/enrolments/{world.student('ben')}",
        params={"reason": NUL},
        headers=world.centre.auth("tutor"),
    )
    assert is_problem(response, 422)["field"] == "reason" and centres.position == before


def test_a_centre_sets_how_long_its_sessions_may_last(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    url = "/api/v1/centres/alpha/session-length"
    is_problem(client.post(url, json={"maxSessionMinutes": 60}, headers=alpha.auth("tutor")), 403)
    is_problem(
        client.post(
            "/api/v1/centres/beta/session-length",
            json={"maxSessionMinutes": 60},
            headers=alpha.auth("admin"),
        ),
        404,
    )
    assert (
        is_problem(
            client.post(url, json={"maxSessionMinutes": 1441}, headers=alpha.auth("admin")), 422
        )["field"]
        == "maxSessionMinutes"
    )
    # Twelve hours until a centre says otherwise; then sessions of up to 24 hours are taken.
    is_problem(
        client.post(
            "/api/v1/sessions",
            json=SESSION | at("2030-03-04T00:00:00+00:00", 13),
            headers=alpha.auth("tutor"),
        ),
        422,
    )
    changed = client.post(url, json={"maxSessionMinutes": 1440}, headers=alpha.auth("admin"))
    assert changed.status_code == 200 and changed.json() | {"position": 0} == {
        "centreId": "alpha",
        "maxSessionMinutes": 1440,
        "changed": True,
        "position": 0,
    }
    centres.directory.clear()  # another replica would see the new length within a minute
    assert (
        client.post(
            "/api/v1/sessions",
            json=SESSION | at("2030-03-04T00:00:00+00:00", 13),
            headers=alpha.auth("tutor"),
        ).status_code
        == 201
    )
    # Then an hour: scheduling, rescheduling, extending and weekly rules are held to it.
    client.post(url, json={"maxSessionMinutes": 60}, headers=alpha.auth("admin"))
    centres.directory.clear()
    assert (
        is_problem(
            client.post(
                "/api/v1/sessions",
                json=SESSION | at("2030-03-04T00:00:00+00:00", 1.5),
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "endsAt"
    )
    session = schedule(client, alpha)  # an hour long
    assert (
        is_problem(
            client.post(
                f"/api/v1/sessions/{session}/reschedule",
                json=at("2030-03-04T00:00:00+00:00", 2),
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "endsAt"
    )
    client.post(f"/api/v1/sessions/{session}/start", headers=alpha.auth("tutor"))
    assert (
        is_problem(
            client.post(
                f"/api/v1/sessions/{session}/extend",
                json={"minutes": 5},
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "minutes"
    )
    cohort = client.post(
        "/api/v1/classes",
        json={"name": "Y5", "subject": "Maths", "teacherId": str(alpha["tutor"].user_id)},
        headers=alpha.auth("admin"),
    ).json()["classId"]
    assert (
        is_problem(
            client.post(
                f"/api/v1/classes/{cohort}/schedule-rules",
                json=RULE | {"durationMinutes": 90},
                headers=alpha.auth("admin"),
            ),
            422,
        )["field"]
        == "durationMinutes"
    )
    again = client.post(url, json={"maxSessionMinutes": 60}, headers=alpha.auth("admin"))
    assert again.json()["changed"] is False


def test_an_event_too_large_for_one_nats_message_is_refused_before_it_is_stored(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    """Each field within its limit, the whole beyond what the relay could ever publish."""
    question = {
        "prompt": "p" * 2000,
        "options": [f"{n:03d}" + "o" * 496 for n in range(26)],
        "acceptedAnswers": ["000" + "o" * 496],
    }
    body = {
        "title": "Everything",
        "courseId": "maths",
        "exerciseType": "MULTIPLE_CHOICE",
        "questions": [{"questionId": f"q{n}", **question} for n in range(100)],
    }
    before = centres.position
    problem = is_problem(
        client.post("/api/v1/exercises", json=body, headers=alpha.auth("tutor")), 422
    )
    assert problem["field"] == "body" and "KiB" in problem["detail"]
    assert centres.position == before
    body["questions"] = body["questions"][:10]
    assert (
        client.post("/api/v1/exercises", json=body, headers=alpha.auth("tutor")).status_code == 201
    )


def test_a_body_larger_than_any_command_is_refused_unread(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    before = centres.position
    body = {
        "title": "x",
        "courseId": "maths",
        "exerciseType": "LONG_ANSWER",
        "instructions": "i" * (3 * 1024 * 1024),
        "questions": [{"questionId": "q", "prompt": "p"}],
    }
    response = client.post("/api/v1/exercises", json=body, headers=alpha.auth("tutor"))
    assert is_problem(response, 413)["title"] == "Request too large"
    assert centres.position == before
