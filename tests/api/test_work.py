"""Exercises, work set during a session, and homework, as tutors and students see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.domain.seat import seat_id
from shared.events import ExerciseGraded, ExerciseSubmitted, HomeworkSubmitted
from tests.api.helpers import is_problem, live_session
from tests.builders import Centre
from tests.support.history import history
from tests.support.privacy import opened

FRACTIONS: dict[str, Any] = {
    "title": "Fractions check",
    "courseId": "maths-y5",
    "exerciseType": "MULTIPLE_CHOICE",
    "difficulty": "EASY",
    "questions": [
        {
            "questionId": "q1",
            "prompt": "1/2 + 1/4 = ?",
            "options": ["3/4", "2/6"],
            "acceptedAnswers": ["3/4"],
        },
        {
            "questionId": "q2",
            "prompt": "Which is larger?",
            "points": 2,
            "options": ["2/3", "3/5"],
            "acceptedAnswers": ["2/3"],
        },
    ],
}
ESSAY: dict[str, Any] = {
    "title": "Describe a ratio",
    "courseId": "maths-y5",
    "exerciseType": "SHORT_ANSWER",
    "questions": [{"questionId": "q1", "prompt": "Explain 2:3 in your own words", "points": 4}],
}


def publish(client: TestClient[Litestar], centre: Centre, body: dict[str, Any]) -> str:
    response = client.post("/api/v1/exercises", json=body, headers=centre.auth("tutor"))
    assert response.status_code == 201, response.text
    return str(response.json()["exerciseId"])


def test_the_catalogue_keeps_answer_keys_that_make_sense(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    published = client.post("/api/v1/exercises", json=FRACTIONS, headers=alpha.auth("tutor")).json()
    assert (published["maxScore"], published["autoGradable"]) == (3, True)
    essay = client.post("/api/v1/exercises", json=ESSAY, headers=alpha.auth("supervisor")).json()
    assert (essay["maxScore"], essay["autoGradable"]) == (4, False)

    is_problem(client.post("/api/v1/exercises", json=FRACTIONS, headers=alpha.auth("ann")), 403)
    is_problem(client.post("/api/v1/exercises", json=FRACTIONS, headers=alpha.auth("parent")), 403)
    wrong_key = {
        **FRACTIONS,
        "questions": [{**FRACTIONS["questions"][0], "acceptedAnswers": ["1/2"]}],
    }
    assert (
        is_problem(
            client.post("/api/v1/exercises", json=wrong_key, headers=alpha.auth("tutor")), 422
        )["field"]
        == "questions[0].acceptedAnswers"
    )
    twice = {**FRACTIONS, "questions": [FRACTIONS["questions"][0], FRACTIONS["questions"][0]]}
    assert (
        is_problem(client.post("/api/v1/exercises", json=twice, headers=alpha.auth("tutor")), 422)[
            "field"
        ]
        == "questions[1].questionId"
    )
    not_a_number = {
        "title": "Sums",
        "courseId": "m",
        "exerciseType": "NUMERICAL",
        "questions": [{"questionId": "q", "prompt": "2+2", "acceptedAnswers": ["four"]}],
    }
    is_problem(
        client.post("/api/v1/exercises", json=not_a_number, headers=alpha.auth("tutor")), 422
    )
    is_problem(
        client.post(
            "/api/v1/exercises", json={**FRACTIONS, "answerKey": "x"}, headers=alpha.auth("tutor")
        ),
        422,
    )
    is_problem(
        client.post(
            f"/api/v1/exercises/{essay['exerciseId']}/retire",
            json={"reason": "x"},
            headers=alpha.auth("ann"),
        ),
        403,
    )
    is_problem(
        client.post(
            f"/api/v1/exercises/{essay['exerciseId']}/retire",
            json={"reason": "x"},
            headers=alpha.auth("finance"),
        ),
        403,
    )
    retired = client.post(
        f"/api/v1/exercises/{essay['exerciseId']}/retire",
        json={"reason": "replaced"},
        headers=alpha.auth("tutor"),
    )
    assert retired.json()["retired"] is True
    is_problem(
        client.post(
            f"/api/v1/exercises/{essay['exerciseId']}/retire",
            json={"reason": "again"},
            headers=alpha.auth("tutor"),
        ),
        409,
    )
    session = live_session(client, alpha, "ann")
    assert (
        is_problem(
            client.post(
                f"/api/v1/sessions/{session}/work",
                json={"exerciseId": essay["exerciseId"]},
                headers=alpha.auth("tutor"),
            ),
            409,
        )["detail"]
        == "the exercise is retired"
    )


def test_work_is_set_for_all_done_by_each_student_and_marked_from_the_key(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    beta: Centre,
) -> None:
    session = live_session(client, alpha, "ann", "ben")
    exercise = publish(client, alpha, FRACTIONS)
    url = f"/api/v1/sessions/{session}/work"
    is_problem(client.post(url, json={"exerciseId": exercise}, headers=alpha.auth("ann")), 403)
    is_problem(
        client.post(url, json={"exerciseId": exercise}, headers=alpha.auth("other_tutor")), 403
    )
    assert (
        is_problem(
            client.post(
                url,
                json={"exerciseId": exercise, "studentIds": [str(alpha["cal"].user_id)]},
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "studentIds[0]"
    )
    assert (
        is_problem(
            client.post(
                url,
                json={"exerciseId": "00000000-0000-4000-8000-000000000000"},
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "exerciseId"
    )
    foreign = client.post("/api/v1/exercises", json=FRACTIONS, headers=beta.auth("tutor")).json()[
        "exerciseId"
    ]
    is_problem(client.post(url, json={"exerciseId": foreign}, headers=alpha.auth("tutor")), 422)

    assigned = client.post(url, json={"exerciseId": exercise}, headers=alpha.auth("tutor"))
    assert assigned.status_code == 201
    work = {w["studentId"]: w["workId"] for w in assigned.json()["work"]}
    assert set(work) == {str(alpha["ann"].user_id), str(alpha["ben"].user_id)}
    is_problem(client.post(url, json={"exerciseId": exercise}, headers=alpha.auth("tutor")), 409)

    ann = f"{url}/{work[str(alpha['ann'].user_id)]}"
    is_problem(client.post(f"{ann}/progress", json={"percent": 10}, headers=alpha.auth("ann")), 409)
    is_problem(client.post(f"{ann}/start", headers=alpha.auth("ben")), 404)  # not his work
    is_problem(client.post(f"{ann}/start", headers=alpha.auth("tutor")), 403)
    assert client.post(f"{ann}/start", headers=alpha.auth("ann")).json()["status"] == "IN_PROGRESS"
    is_problem(client.post(f"{ann}/start", headers=alpha.auth("ann")), 409)
    assert (
        client.post(f"{ann}/progress", json={"percent": 60}, headers=alpha.auth("ann")).json()[
            "progress"
        ]
        == 60
    )
    assert (
        is_problem(
            client.post(f"{ann}/progress", json={"percent": 100}, headers=alpha.auth("ann")), 422
        )["field"]
        == "percent"
    )
    assert (
        is_problem(
            client.post(
                f"{ann}/submit", json={"answers": {"q9": "3/4"}}, headers=alpha.auth("ann")
            ),
            422,
        )["field"]
        == "answers.q9"
    )
    submitted = client.post(
        f"{ann}/submit", json={"answers": {"q1": " 3/4 ", "q2": "2/3"}}, headers=alpha.auth("ann")
    ).json()
    assert (
        submitted["status"],
        submitted["score"],
        submitted["maxScore"],
        submitted["xpAwarded"],
    ) == ("AUTO_GRADED", 3.0, 3, 50)
    is_problem(client.post(f"{ann}/submit", json={"answers": {}}, headers=alpha.auth("ann")), 409)
    is_problem(client.post(f"{ann}/grade", json={"score": 1}, headers=alpha.auth("tutor")), 409)

    ben = f"{url}/{work[str(alpha['ben'].user_id)]}"
    client.post(f"{ben}/start", headers=alpha.auth("ben"))
    ben_marked = client.post(
        f"{ben}/submit", json={"answers": {"q1": "2/6", "q2": "2/3"}}, headers=alpha.auth("ben")
    ).json()
    assert (ben_marked["score"], ben_marked["xpAwarded"]) == (2.0, 15)  # 67 %: the 50 % band
    stored = [
        e
        for e in centres.events.get(seat_id(UUID(session), alpha["ann"].user_id))
        if isinstance(e, ExerciseSubmitted)
    ]
    assert [(e.score, e.xp_awarded) for e in stored] == [(3.0, 50)]


def test_work_without_a_key_waits_for_the_tutor(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    session = live_session(client, alpha, "ann")
    essay = publish(client, alpha, ESSAY)
    url = f"/api/v1/sessions/{session}/work"
    (work,) = client.post(
        url,
        json={"exerciseId": essay, "studentIds": [str(alpha["ann"].user_id)]},
        headers=alpha.auth("tutor"),
    ).json()["work"]
    item = f"{url}/{work['workId']}"
    is_problem(
        client.post(f"{item}/grade", json={"score": 1}, headers=alpha.auth("tutor")), 409
    )  # not in yet
    client.post(f"{item}/start", headers=alpha.auth("ann"))
    handed = client.post(
        f"{item}/submit",
        json={"answers": {"q1": "two parts to three parts"}},
        headers=alpha.auth("ann"),
    ).json()
    assert (handed["status"], handed["score"], handed["xpAwarded"]) == ("SUBMITTED", None, 0)
    is_problem(client.post(f"{item}/grade", json={"score": 3}, headers=alpha.auth("ann")), 403)
    is_problem(
        client.post(f"{item}/grade", json={"score": 3}, headers=alpha.auth("other_tutor")), 403
    )
    assert (
        is_problem(
            client.post(f"{item}/grade", json={"score": 5}, headers=alpha.auth("tutor")), 422
        )["field"]
        == "score"
    )
    is_problem(client.post(f"{item}/grade", json={"score": -1}, headers=alpha.auth("tutor")), 422)
    graded = client.post(
        f"{item}/grade",
        json={"score": 3, "feedback": "Good, name both parts"},
        headers=alpha.auth("tutor"),
    ).json()
    assert (graded["status"], graded["score"], graded["xpAwarded"]) == ("GRADED", 3.0, 30)
    is_problem(client.post(f"{item}/grade", json={"score": 4}, headers=alpha.auth("tutor")), 409)
    is_problem(
        client.post(
            f"{url}/00000000-0000-4000-8000-000000000000/grade",
            json={"score": 1},
            headers=alpha.auth("tutor"),
        ),
        404,
    )
    grades = [
        e
        for e in history(centres, seat_id(UUID(session), alpha["ann"].user_id))
        if isinstance(e, ExerciseGraded)
    ]
    assert [(e.score, e.feedback) for e in grades] == [(3.0, "Good, name both parts")]


def test_homework_is_set_handed_in_and_graded(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
) -> None:
    session = live_session(client, alpha, "ann")
    fractions, essay = publish(client, alpha, FRACTIONS), publish(client, alpha, ESSAY)
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    body = {
        "studentId": str(alpha["ann"].user_id),
        "title": "Fractions at home",
        "exerciseIds": [fractions, essay],
        "dueAt": due,
        "sessionId": session,
    }
    is_problem(client.post("/api/v1/homework", json=body, headers=alpha.auth("ann")), 403)
    is_problem(client.post("/api/v1/homework", json=body, headers=alpha.auth("other_tutor")), 403)
    past = {**body, "dueAt": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    assert (
        is_problem(client.post("/api/v1/homework", json=past, headers=alpha.auth("tutor")), 422)[
            "field"
        ]
        == "dueAt"
    )
    assert (
        is_problem(
            client.post(
                "/api/v1/homework",
                json={**body, "studentId": str(alpha["tutor"].user_id)},
                headers=alpha.auth("tutor"),
            ),
            422,
        )["field"]
        == "studentId"
    )
    set_ = client.post("/api/v1/homework", json=body, headers=alpha.auth("tutor"))
    assert set_.status_code == 201
    homework = set_.json()
    assert (homework["status"], homework["maxScore"], homework["teacherId"]) == (
        "NOT_STARTED",
        7,
        str(alpha["tutor"].user_id),
    )
    url = f"/api/v1/homework/{homework['homeworkId']}"
    is_problem(client.post(f"{url}/start", headers=alpha.auth("ben")), 404)
    for role in ("tutor", "parent", "finance"):
        is_problem(client.post(f"{url}/start", headers=alpha.auth(role)), 403)
        is_problem(
            client.post(f"{url}/submit", json={"answers": {}}, headers=alpha.auth(role)), 403
        )
    is_problem(client.post(f"{url}/grade", json={"score": 1}, headers=alpha.auth("ann")), 403)
    assert client.post(f"{url}/start", headers=alpha.auth("ann")).json()["status"] == "IN_PROGRESS"
    is_problem(client.post(f"{url}/grade", json={"score": 1}, headers=alpha.auth("tutor")), 409)
    unknown = {"answers": {"00000000-0000-4000-8000-000000000000": {"q1": "x"}}}
    assert (
        is_problem(client.post(f"{url}/submit", json=unknown, headers=alpha.auth("ann")), 422)[
            "field"
        ]
        == "answers"
    )
    answers = {
        "answers": {fractions: {"q1": "3/4", "q2": "3/5"}, essay: {"q1": "a ratio compares"}}
    }
    handed = client.post(f"{url}/submit", json=answers, headers=alpha.auth("ann")).json()
    assert handed["status"] == "SUBMITTED"
    is_problem(client.post(f"{url}/submit", json=answers, headers=alpha.auth("ann")), 409)
    is_problem(
        client.post(f"{url}/grade", json={"score": 5}, headers=alpha.auth("other_tutor")), 403
    )
    assert (
        is_problem(
            client.post(f"{url}/grade", json={"score": 8}, headers=alpha.auth("tutor")), 422
        )["field"]
        == "score"
    )
    graded = client.post(
        f"{url}/grade", json={"score": 5, "feedback": "Check q2"}, headers=alpha.auth("tutor")
    )
    assert graded.json()["status"] == "GRADED"
    (submitted,) = [
        e
        for e in centres.events.get(UUID(homework["homeworkId"]))
        if isinstance(e, HomeworkSubmitted)
    ]
    assert (submitted.on_time, submitted.xp_awarded, submitted.auto_score) == (True, 20, None)

    only_keyed = {**body, "exerciseIds": [fractions], "sessionId": None}
    quick = client.post("/api/v1/homework", json=only_keyed, headers=alpha.auth("tutor")).json()
    marked = client.post(
        f"/api/v1/homework/{quick['homeworkId']}/submit",
        json={"answers": {fractions: {"q1": "3/4", "q2": "2/3"}}},
        headers=alpha.auth("ann"),
    )
    assert marked.json()["status"] == "AUTO_GRADED"
    by_admin = {**only_keyed}
    assert (
        is_problem(
            client.post("/api/v1/homework", json=by_admin, headers=alpha.auth("admin")), 422
        )["field"]
        == "teacherId"
    )
    admin_set = client.post(
        "/api/v1/homework",
        json={**by_admin, "teacherId": str(alpha["tutor"].user_id)},
        headers=alpha.auth("admin"),
    )
    assert admin_set.status_code == 201


def test_work_of_a_removed_student_stays_gradable_and_grading_is_not_their_activity(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    tmp_path: Any,
) -> None:
    import msgspec

    from shared import events
    from shared.readmodels.access import control_center
    from shared.readmodels.projector import apply_all
    from shared.readmodels.views import utcnow
    from tests.readside import read_store

    session = live_session(client, alpha, "ann", "ben")
    client.post(
        f"/api/v1/sessions/{session}/presence", json={"event": "JOIN"}, headers=alpha.auth("ann")
    )
    essay = publish(client, alpha, ESSAY)
    url = f"/api/v1/sessions/{session}/work"
    work = {
        w["studentId"]: w["workId"]
        for w in client.post(url, json={"exerciseId": essay}, headers=alpha.auth("tutor")).json()[
            "work"
        ]
    }
    ann, ben = (
        f"{url}/{work[str(alpha['ann'].user_id)]}",
        f"{url}/{work[str(alpha['ben'].user_id)]}",
    )
    client.post(f"{ann}/start", headers=alpha.auth("ann"))
    client.post(
        f"{ann}/submit", json={"answers": {"q1": "two to three"}}, headers=alpha.auth("ann")
    )
    client.post(f"{ben}/start", headers=alpha.auth("ben"))
    client.post(
        "/api/academic/attendance/bulk",
        headers=alpha.auth("tutor"),
        json={
            "sessionId": session,
            "records": [{"studentId": str(alpha["ann"].user_id), "status": "PRESENT"}],
        },
    )
    for student in ("ann", "ben"):
        removed = client.delete(
            f"/api/v1/sessions/{session}/enrolments/{alpha[student].user_id}",
            headers=alpha.auth("tutor"),
        )
        assert removed.status_code == 200, removed.text
    is_problem(client.post(f"{ben}/progress", json={"percent": 30}, headers=alpha.auth("ben")), 409)
    graded = client.post(f"{ann}/grade", json={"score": 2}, headers=alpha.auth("tutor"))
    assert graded.status_code == 200 and graded.json()["status"] == "GRADED"

    # Ann's own events happened ten minutes ago; the tutor's grade just now does not wake her up.
    store = read_store(tmp_path, f"idle-{centres.position}.sqlite")
    earlier = []
    for n in centres.recorder.select_notifications(1, 100_000):
        event = events.decode(n.state)
        if not isinstance(event, events.ExerciseGraded):
            event = msgspec.structs.replace(
                event, occurred_at=event.occurred_at - timedelta(minutes=10)
            )
        earlier.append((event, n.id))
    apply_all(store, earlier)
    view = control_center(store, alpha["tutor"], UUID(session), utcnow()).data
    row = next(s for s in view["students"] if s["studentId"] == str(alpha["ann"].user_id))
    assert row["activity"] == "IDLE" and row["work"][0]["status"] == "GRADED"


def test_a_student_left_alone_too_long_comes_to_the_top(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    tmp_path: Any,
) -> None:
    import msgspec

    from shared import events
    from shared.readmodels.access import control_center
    from shared.readmodels.projector import apply_all
    from shared.readmodels.views import utcnow
    from tests.readside import read_store

    session = live_session(client, alpha, "ann", "ben", "cal")
    for student in ("ann", "ben", "cal"):
        client.post(
            f"/api/v1/sessions/{session}/presence",
            json={"event": "JOIN"},
            headers=alpha.auth(student),
        )
    client.post(
        f"/api/v1/sessions/{session}/students/{alpha['ben'].user_id}/mode",
        json={"mode": "TEACH"},
        headers=alpha.auth("tutor"),
    )
    # Everything so far happened twelve minutes ago: Ann and Cal joined, Ben is being taught.
    store = read_store(tmp_path, f"attention-{centres.position}.sqlite")
    history = [
        (msgspec.structs.replace(e, occurred_at=e.occurred_at - timedelta(minutes=12)), n.id)
        for n in centres.recorder.select_notifications(1, 100_000)
        for e in [events.decode(n.state)]
    ]
    apply_all(store, history)
    view = opened(
        centres, control_center(store, alpha["tutor"], UUID(session), utcnow()).data, "alpha"
    )
    rows = [(s["name"], s["needsAttention"], s["activity"]) for s in view["students"]]
    # Those needing attention first (between them, in the order of their names as stored:
    # sealed, so in no order a reader could tell).
    needing = {name: (attention, activity) for name, attention, activity in rows[:2]}
    assert set(needing) == {"Ann", "Cal"} and all(a for a, _ in needing.values())
    assert needing["Ann"] == (True, "IDLE")
    assert rows[2][:2] == ("Ben", False)  # the tutor is with him
    assert view["needingAttention"] == 2


def test_a_student_back_from_being_away_is_not_counted_as_left_alone(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    tmp_path: Any,
) -> None:
    import msgspec

    from shared import events
    from shared.readmodels.access import control_center
    from shared.readmodels.projector import apply_all
    from shared.readmodels.views import utcnow
    from tests.readside import read_store

    session = live_session(client, alpha, "ann")
    presence = f"/api/v1/sessions/{session}/presence"
    for kind in ("JOIN", "LEAVE", "JOIN"):
        assert client.post(presence, json={"event": kind}, headers=alpha.auth("ann")).json()[
            "recorded"
        ]
    # She joined and left forty minutes ago, and came back a minute ago.
    history = [
        (events.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 100_000)
    ]
    *before, (back, back_id) = history
    store = read_store(tmp_path, f"back-{centres.position}.sqlite")
    apply_all(
        store,
        [
            (msgspec.structs.replace(e, occurred_at=e.occurred_at - timedelta(minutes=40)), i)
            for e, i in before
        ]
        + [
            (
                msgspec.structs.replace(back, occurred_at=back.occurred_at - timedelta(minutes=1)),
                back_id,
            )
        ],
    )
    (row,) = control_center(store, alpha["tutor"], UUID(session), utcnow()).data["students"]
    assert row["activity"] == "ACTIVE" and not row["needsAttention"]
    assert 50 <= row["unattendedSeconds"] <= 120
