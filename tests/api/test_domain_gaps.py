"""Three gaps a centre ran into: My Day forgetting today once a tutor books far ahead, help
requests left waiting for ever after a session ends, and moving a student to another lesson in
the middle of a session. Each is driven through the command API and read back from the read
models, as a tutor would see it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from shared import events
from shared.readmodels import access
from shared.readmodels.projector import Change, apply_all
from tests.api.helpers import enrol, is_problem, live_session, schedule, start
from tests.builders import Centre
from tests.readside import read_store
from tests.support.privacy import opened

SYDNEY = ZoneInfo("Australia/Sydney")  # the builders' centres are in Sydney


class ReadSide:
    """The read models, fed the store's events as the projection service feeds them."""

    def __init__(self, centres: TutoringCentres, folder: Path) -> None:
        self.centres, self.store, self.position = centres, read_store(folder), 0

    def catch_up(self) -> list[Change]:
        notifications = self.centres.recorder.select_notifications(self.position + 1, 1_000_000)
        if not notifications:
            return []
        self.position = notifications[-1].id
        return apply_all(self.store, [(events.decode(n.state), n.id) for n in notifications])

    def events_since(self, position: int) -> list[events.Event]:
        return [
            events.decode(n.state)
            for n in self.centres.recorder.select_notifications(position + 1, 1_000_000)
        ]


@pytest.fixture
def read(centres: TutoringCentres, tmp_path: Path) -> ReadSide:
    return ReadSide(centres, tmp_path)


def at_local(day_offset: int, hour: int) -> datetime:
    today = datetime.now(SYDNEY).date()
    return datetime.combine(today + timedelta(days=day_offset), time(hour), SYDNEY)


def session_at(
    client: TestClient[Litestar],
    centre: Centre,
    starts: datetime,
    hours: float = 1,
) -> str:
    return schedule(
        client,
        centre,
        startsAt=starts.isoformat(),
        endsAt=(starts + timedelta(hours=hours)).isoformat(),
    )


def run_through(client: TestClient[Litestar], centre: Centre, session: str) -> None:
    enrol(client, centre, session, "ann")
    start(client, centre, session)
    response = client.post(f"/api/v1/sessions/{session}/end", headers=centre.auth("tutor"))
    assert response.status_code == 200, response.text


# --- My Day, whatever is booked ahead ------------------------------------------------------------


def test_my_day_keeps_todays_finished_sessions_when_the_tutor_books_far_ahead(
    client: TestClient[Litestar],
    alpha: Centre,
    read: ReadSide,
) -> None:
    today = session_at(client, alpha, at_local(0, 12))
    run_through(client, alpha, today)
    long_ago = session_at(client, alpha, at_local(-45, 12))
    run_through(client, alpha, long_ago)
    for ahead in (at_local(31, 9), at_local(365, 9), datetime(2100, 6, 1, 9, tzinfo=SYDNEY)):
        session_at(client, alpha, ahead)  # next month, next year, as far ahead as can be
    read.catch_up()

    day = access.my_day(read.store, alpha["tutor"], None, datetime.now(UTC)).data
    assert [s["sessionId"] for s in day["sessions"]] == [today]
    assert (day["sessions"][0]["status"], day["stats"]["completed"]) == ("COMPLETED", 1)
    tutor_doc = read.store.get("tutor", str(alpha["tutor"].user_id))
    assert tutor_doc is not None
    kept = tutor_doc.doc["sessions"]
    assert today in kept and long_ago not in kept  # still bounded: finished 45 days ago is dropped
    assert len(kept) == 4


# --- help requests close with their session ------------------------------------------------------


def ask(
    client: TestClient[Litestar],
    centre: Centre,
    session: str,
    student: str,
    priority: str = "HIGH",
) -> str:
    response = client.post(
        f"/api/v1/sessions/{session}/help-requests",
        json={"priority": priority},
        headers=centre.auth(student),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["helpRequestId"])


def handle(
    client: TestClient[Litestar],
    centre: Centre,
    session: str,
    request: str,
    verb: str,
    **body: Any,
) -> None:
    response = client.post(
        f"/api/v1/sessions/{session}/help-requests/{request}/{verb}",
        json=body or None,
        headers=centre.auth("tutor"),
    )
    assert response.status_code == 200, response.text


def test_ending_a_session_closes_its_open_help_requests_in_the_same_commit(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    read: ReadSide,
) -> None:
    session = live_session(client, alpha, "ann", "ben", "cal")
    acknowledged, pending, answered = (
        ask(client, alpha, session, s) for s in ("ann", "ben", "cal")
    )
    handle(client, alpha, session, acknowledged, "acknowledge")
    handle(client, alpha, session, answered, "resolve", response="Look at 2b again")
    before = centres.position

    ended = client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    assert ended.status_code == 200, ended.text
    assert sorted(ended.json()["helpRequestsClosed"]) == sorted([acknowledged, pending])
    committed = read.events_since(before)
    assert ended.json()["position"] == centres.position  # one commit: the end and the closings
    assert [e.type_name for e in committed] == [
        "SessionEnded",
        "HelpRequestClosed",
        "HelpRequestClosed",
    ]
    closed = [e for e in committed[1:] if isinstance(e, events.HelpRequestClosed)]
    assert len(closed) == len(committed) - 1
    assert {(str(e.help_request_id), e.reason) for e in closed} == {
        (acknowledged, "SESSION_ENDED"),
        (pending, "SESSION_ENDED"),
    }

    read.catch_up()
    now = datetime.now(UTC) + timedelta(hours=1)  # long past every SLA
    centre_view = access.control_center(read.store, alpha["admin"], UUID(session), now).data
    requests = {h["helpRequestId"]: h for s in centre_view["students"] for h in s["helpRequests"]}
    assert {r: requests[r]["status"] for r in (acknowledged, pending, answered)} == {
        acknowledged: "CLOSED",
        pending: "CLOSED",
        answered: "RESOLVED",
    }
    assert requests[pending]["closeReason"] == "SESSION_ENDED" and requests[pending]["closedAt"]
    assert requests[pending]["waitingSeconds"] is None and "handledBy" not in requests[pending]
    assert centre_view["openHelpRequests"] == 0
    figures = access.help_request_analytics(
        read.store, alpha["admin"], now - timedelta(days=1), now, None, now
    ).data["overall"]["total"]
    assert {k: figures[k] for k in ("raised", "resolved", "closed", "open", "slaBreached")} == {
        "raised": 3,
        "resolved": 1,
        "closed": 2,
        "open": 0,
        "slaBreached": 0,
    }
    assert figures["resolutionSeconds"]["count"] == 1  # closed is not resolved by the tutor
    assert access.my_day(read.store, alpha["tutor"], None, now).data["openHelpRequests"] == []
    overview = access.student_overview(read.store, alpha["ben"], alpha["ben"].user_id, now).data
    assert overview["openHelpRequest"] is None


def test_removing_a_student_closes_their_open_help_request(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    read: ReadSide,
) -> None:
    session = live_session(client, alpha, "ann", "ben")
    request = ask(client, alpha, session, "ben")
    before = centres.position
    removed = client.delete(
        f"/api/v1/sessions/{session}/enrolments/{alpha['ben'].user_id}", headers=alpha.auth("tutor")
    )
    assert removed.status_code == 200, removed.text
    committed = read.events_since(before)
    assert [(e.type_name, getattr(e, "reason", None)) for e in committed] == [
        ("StudentRemoved", None),
        ("HelpRequestClosed", "STUDENT_REMOVED"),
    ]
    ended = client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    assert ended.json()["helpRequestsClosed"] == []  # nothing left open to close
    read.catch_up()
    session_doc = read.store.get("session", session)
    assert session_doc is not None
    help_request = session_doc.doc["students"][str(alpha["ben"].user_id)]["helpRequests"][request]
    assert (help_request["status"], help_request["closeReason"]) == ("CLOSED", "STUDENT_REMOVED")


# --- moving a student to another lesson ----------------------------------------------------------


def lesson(
    client: TestClient[Litestar],
    centre: Centre,
    session: str,
    student: str,
    as_: str = "tutor",
    **body: Any,
) -> Any:
    return client.post(
        f"/api/v1/sessions/{session}/enrolments/{centre[student].user_id}/lesson",
        json=body,
        headers=centre.auth(as_),
    )


def test_a_tutor_moves_a_student_to_another_lesson_mid_session(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    read: ReadSide,
) -> None:
    session = live_session(client, alpha, "ann", "ben")
    read.catch_up()
    moved = lesson(
        client, alpha, session, "ann", lessonId="lesson-7", reason="finished lesson 1 early"
    )
    assert moved.status_code == 200, moved.text
    assert moved.json() | {"position": 0} == {
        "sessionId": session,
        "studentId": str(alpha["ann"].user_id),
        "courseId": "course-ann",
        "lessonId": "lesson-7",
        "changed": True,
        "position": 0,
    }
    other_course = lesson(
        client, alpha, session, "ben", as_="supervisor", lessonId="l-2", courseId="chemistry"
    )
    assert (other_course.json()["courseId"], other_course.json()["lessonId"]) == (
        "chemistry",
        "l-2",
    )
    before = centres.position
    again = lesson(client, alpha, session, "ann", lessonId="lesson-7")
    assert again.json()["changed"] is False and centres.position == before  # nothing recorded

    changes = read.catch_up()
    delta = next(
        c for c in changes if (c.kind, c.key) == ("session", session)
    )  # what the gateway pushes
    assert delta.after["students"][str(alpha["ann"].user_id)]["lessonId"] == "lesson-7"
    now = datetime.now(UTC)
    rows = {
        s["studentId"]: s
        for s in access.control_center(read.store, alpha["tutor"], UUID(session), now).data[
            "students"
        ]
    }
    assert (
        rows[str(alpha["ann"].user_id)]["courseId"],
        rows[str(alpha["ann"].user_id)]["lessonId"],
    ) == ("course-ann", "lesson-7")
    assert (
        rows[str(alpha["ben"].user_id)]["courseId"],
        rows[str(alpha["ben"].user_id)]["lessonId"],
    ) == ("chemistry", "l-2")
    log = [
        row
        for row in access.session_log(read.store, alpha["admin"], UUID(session))
        if row.event_type == "StudentLessonChanged"
    ]
    opened_log = [opened(centres, row.event, "alpha") for row in log]
    assert [
        (event["previousLessonId"], event["lessonId"], event["reason"]) for event in opened_log
    ] == [("lesson-1", "lesson-7", "finished lesson 1 early"), ("lesson-1", "l-2", None)]
    mine = access.student_overview(read.store, alpha["ann"], alpha["ann"].user_id, now).data
    assert mine["sessions"][0]["lessonId"] == "lesson-7"


def test_a_lesson_changes_only_for_an_enrolled_student_of_a_session_still_to_run_or_live(
    client: TestClient[Litestar],
    alpha: Centre,
) -> None:
    session = live_session(client, alpha, "ann")
    is_problem(lesson(client, alpha, session, "ben", lessonId="x"), 409)  # not enrolled
    assert (
        is_problem(lesson(client, alpha, session, "ann", lessonId=""), 422)["field"] == "lessonId"
    )
    assert (
        is_problem(lesson(client, alpha, session, "ann", lessonId="a\u0000b"), 422)["field"]
        == "lessonId"
    )
    is_problem(lesson(client, alpha, session, "ann", as_="other_tutor", lessonId="x"), 403)
    for who in ("ann", "parent", "finance"):
        is_problem(lesson(client, alpha, session, "ann", as_=who, lessonId="x"), 403)
    client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    is_problem(lesson(client, alpha, session, "ann", lessonId="x"), 409)  # it is over
    scheduled = schedule(client, alpha)
    enrol(client, alpha, scheduled, "ben")
    assert lesson(client, alpha, scheduled, "ben", lessonId="prepared").json()["changed"] is True


def test_a_content_assignment_for_a_session_moves_the_student_to_its_lesson(
    client: TestClient[Litestar],
    alpha: Centre,
    read: ReadSide,
) -> None:
    session = live_session(client, alpha, "ann")
    url = f"/api/v1/students/{alpha['ann'].user_id}/content-assignments"
    body = {
        "courseId": "algebra",
        "lessonId": "fractions-2",
        "reason": "Ready for harder fractions",
        "sessionId": session,
    }
    assigned = client.post(url, json=body, headers=alpha.auth("tutor"))
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["lessonChanged"] is True
    is_problem(
        client.post(url, json=body | {"lessonId": "other"}, headers=alpha.auth("other_tutor")), 403
    )
    exercise_only = client.post(
        url, json=body | {"lessonId": None, "exerciseId": "ex-1"}, headers=alpha.auth("other_tutor")
    )
    assert exercise_only.status_code == 201 and exercise_only.json()["lessonChanged"] is False

    read.catch_up()
    row = access.control_center(read.store, alpha["tutor"], UUID(session), datetime.now(UTC)).data[
        "students"
    ][0]
    assert (row["courseId"], row["lessonId"]) == ("algebra", "fractions-2")
    changed = [
        row.event
        for row in access.session_log(read.store, alpha["admin"], UUID(session))
        if row.event_type == "StudentLessonChanged"
    ]
    assert [c["assignmentId"] for c in changed] == [assigned.json()["assignmentId"]]

    client.post(f"/api/v1/sessions/{session}/end", headers=alpha.auth("tutor"))
    later = client.post(url, json=body | {"lessonId": "fractions-3"}, headers=alpha.auth("tutor"))
    assert (
        later.status_code == 201 and later.json()["lessonChanged"] is False
    )  # the session is over


@pytest.mark.parametrize("role", ["admin", "supervisor", "tutor"])
def test_who_may_move_a_student_to_another_lesson(
    client: TestClient[Litestar],
    alpha: Centre,
    role: str,
) -> None:
    session = live_session(client, alpha, "ann")
    assert lesson(client, alpha, session, "ann", as_=role, lessonId=f"by-{role}").status_code == 200
