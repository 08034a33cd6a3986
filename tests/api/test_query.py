"""What tutors, students, parents and auditors read from the query API (the demo centre)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.query.app import create_app
from services.query.settings import QuerySettings
from shared.events import SessionScheduled
from shared.eventstore import EventStoreSettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, EMPTY_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.readside import demo_events, read_store

LIVE = "Intro to Programming - Live Q&A"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    """The same answers from the embedded SQLite read store and from PostgreSQL."""
    if request.param == "sqlite":
        store = read_store(tmp_path)
    else:
        store = open_read_store(
            load(
                ReadStoreSettings,
                {"TUTORPULSE_READ_STORE": "postgres", **request.getfixturevalue("pg").env()},
            )
        )
    apply_all(store, demo_events())
    store.advance_watermark(demo_events()[-1][1])
    yield store
    store.close()


@pytest.fixture
def client(store: ReadStore) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(store)) as test_client:
        yield test_client


def auth(handle: str, centre: str = DEMO_CENTRE) -> dict[str, str]:
    person = demo_person(handle)
    token = mint(Actor(user_id=person.id, role=person.role, centre_id=centre))
    return {"Authorization": f"Bearer {token}"}


def session_id(title: str) -> str:
    return next(
        str(e.session_id)
        for e, _ in demo_events()
        if isinstance(e, SessionScheduled) and e.title == title
    )


def get(client: TestClient[Litestar], url: str, who: str, status: int = 200, **kwargs: Any) -> Any:
    response = client.get(url, headers=auth(who) | kwargs.pop("headers", {}), **kwargs)
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("application/x-ndjson"):
        return response.text
    return response.json()


def test_my_day_shows_a_tutors_day(client: TestClient[Litestar]) -> None:
    day = get(client, "/api/academic/tutor/my-day", "john")["data"]
    titles = [s["title"] for s in day["sessions"]]
    assert titles == [LIVE, "OVERLAP: Programming Workshop", "HTML Basics Workshop"]
    assert day["next"]["title"] == LIVE and day["next"]["status"] == "LIVE"
    assert [(h["studentName"], h["priority"]) for h in day["openHelpRequests"]] == [
        ("Alex Thompson", "URGENT"),
        ("Jane Johnson", "HIGH"),
    ]
    overlap = [a for a in day["alerts"] if a["type"] == "OVERLAPPING_SESSIONS"]
    assert len(overlap) == 1 and "OVERLAP" in overlap[0]["message"]
    catch_ups = day["catchUps"]["pending"] + day["catchUps"]["overdue"]
    assert sorted(c["studentName"] for c in catch_ups) == ["Michael Lee", "Sophia Johnson"]
    assert day["timeZone"] == "Australia/Sydney"
    maria = get(client, "/api/academic/tutor/my-day", "maria")["data"]
    assert [s["title"] for s in maria["sessions"]] == [
        "Multi-Student Video Session",
        "Algebra Study Group",
    ]
    assert maria["openHelpRequests"] == [] and maria["alerts"] == []


def test_my_day_is_for_tutors_and_their_supervisors(client: TestClient[Litestar]) -> None:
    john = str(demo_person("john").id)
    for who in ("jane", "robert", "emily"):
        get(client, "/api/academic/tutor/my-day", who, 403)
    get(client, f"/api/academic/tutor/my-day?tutorId={john}", "maria", 403)
    assert (
        get(client, f"/api/academic/tutor/my-day?tutorId={john}", "david")["data"]["tutorName"]
        == "John Teacher"
    )


def test_the_control_center_puts_students_waiting_for_help_first(
    client: TestClient[Litestar],
) -> None:
    view = get(client, f"/api/v1/sessions/{session_id(LIVE)}/control-center", "john")
    data = view["data"]
    assert view["version"] > 0 and data["status"] == "LIVE"
    assert [s["name"] for s in data["students"]] == ["Alex Thompson", "Jane Johnson", "Michael Lee"]
    alex = data["students"][0]
    assert (alex["courseId"], alex["lessonId"], alex["attendance"]) == (
        "intro-programming",
        "conditionals",
        "PRESENT",
    )
    assert (
        alex["openHelpRequest"]["priority"] == "URGENT"
        and alex["openHelpRequest"]["waitingSeconds"] >= 0
    )
    assert data["students"][2]["attendanceNotes"] == "Bus delay"
    assert data["timing"]["elapsedSeconds"] >= 0 and data["openHelpRequests"] == 2


def test_students_and_parents_see_only_their_own_rows(client: TestClient[Litestar]) -> None:
    url = f"/api/v1/sessions/{session_id(LIVE)}/control-center"
    assert [s["name"] for s in get(client, url, "alex")["data"]["students"]] == ["Alex Thompson"]
    assert [s["name"] for s in get(client, url, "robert")["data"]["students"]] == ["Jane Johnson"]
    get(client, url, "sophia", 404)  # not in this session
    get(client, url, "emily", 403)
    get(client, url, "maria", 403)  # another tutor's session


def test_another_centre_sees_nothing(client: TestClient[Litestar]) -> None:
    url = f"/api/v1/sessions/{session_id(LIVE)}/control-center"
    response = client.get(url, headers=auth("sarah", EMPTY_CENTRE))
    assert response.status_code == 404
    response = client.get(
        f"/api/v1/sessions/{session_id(LIVE)}/log", headers=auth("david", EMPTY_CENTRE)
    )
    assert response.status_code == 404
    assert client.get(url).status_code == 401


def test_the_session_log_is_complete_ordered_and_exportable(client: TestClient[Litestar]) -> None:
    sid = session_id("HTML Fundamentals")
    log = get(client, f"/api/v1/sessions/{sid}/log", "david")
    types = [e["type"] for e in log["entries"]]
    assert types[:2] == ["SessionScheduled", "StudentEnrolled"]
    assert "CatchUpAssigned" in types and types.count("AttendanceMarked") == 3
    positions = [e["position"] for e in log["entries"]]
    assert positions == sorted(positions)
    assert {e["actorRole"] for e in log["entries"]} == {"TEACHER"}
    exported = get(client, f"/api/v1/sessions/{sid}/log.jsonl", "sarah")
    lines = [json.loads(line) for line in exported.splitlines()]
    assert lines == log["entries"]
    sophia_rows = get(client, f"/api/v1/sessions/{sid}/log", "sophia")["entries"]
    assert {e["type"] for e in sophia_rows} == {
        "StudentEnrolled",
        "AttendanceMarked",
        "CatchUpAssigned",
    }
    assert all(e["event"]["studentId"] == str(demo_person("sophia").id) for e in sophia_rows)
    paged = get(client, f"/api/v1/sessions/{sid}/log?limit=2", "david")
    assert len(paged["entries"]) == 2 and paged["next"] == paged["entries"][-1]["position"]


def test_read_your_writes_waits_then_refuses_stale_answers(
    store: ReadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTORPULSE_QUERY_WAIT_SECONDS", "0.2")  # read when the app is built
    watermark = store.watermark()
    with TestClient(create_app(store, own_resources=False)) as client:
        ok = client.get(f"/api/academic/tutor/my-day?position={watermark}", headers=auth("john"))
        assert ok.status_code == 200 and ok.headers["X-Tutorpulse-Watermark"] == str(watermark)
        stale = client.get(
            "/api/academic/tutor/my-day",
            headers=auth("john") | {"X-Tutorpulse-Position": str(watermark + 5)},
        )
        assert stale.status_code == 503 and stale.headers["Retry-After"] == "1"
        assert stale.headers["content-type"].startswith("application/problem+json")


def test_a_position_no_command_has_answered_is_refused_at_once(store: ReadStore) -> None:
    """Beyond the event store's head a position can never be reached: a 422 naming it, not a
    wait ending in 503. Behind the head it is waited for as before."""
    watermark = store.watermark()
    head = watermark + 3
    app = create_app(
        store,
        head=lambda: head,
        own_resources=False,
        settings=load(QuerySettings, {**os.environ, "TUTORPULSE_QUERY_WAIT_SECONDS": "0.2"}),
    )
    with TestClient(app) as client:
        beyond = client.get(f"/api/academic/tutor/my-day?position={head + 1}", headers=auth("john"))
        assert beyond.status_code == 422, beyond.text
        assert beyond.json()["field"] == "position" and str(head) in beyond.json()["detail"]
        by_header = client.get(
            "/api/academic/tutor/my-day",
            headers=auth("john") | {"X-Tutorpulse-Position": str(head + 1)},
        )
        assert by_header.status_code == 422 and by_header.json()["field"] == "X-Tutorpulse-Position"
        behind = client.get(f"/api/academic/tutor/my-day?position={head}", headers=auth("john"))
        assert behind.status_code == 503 and behind.headers["Retry-After"] == "1"


def test_handled_help_requests_leave_my_day_and_keep_their_response_times(tmp_path: Path) -> None:
    from services.command.application import TutoringCentres
    from services.command.commands.help_requests import AcknowledgeHelpRequest, ResolveHelpRequest
    from services.command.seed import seed
    from shared import events

    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    sessions = seed(centres)
    live = sessions[LIVE]
    john = Actor(
        user_id=demo_person("john").id, role=demo_person("john").role, centre_id=DEMO_CENTRE
    )
    store = read_store(tmp_path)

    def project() -> None:
        notifications = centres.recorder.select_notifications(1, 100_000)
        apply_all(store, [(events.decode(n.state), n.id) for n in notifications])

    project()
    session = store.get("session", str(live))
    assert session is not None
    alex = str(demo_person("alex").id)
    (request_id,) = session.doc["students"][alex]["helpRequests"]
    centres.handle(john, AcknowledgeHelpRequest(session_id=live, request_id=UUID(request_id)))
    centres.handle(
        john,
        ResolveHelpRequest(
            session_id=live,
            request_id=UUID(request_id),
            response="Check the condition's indentation",
        ),
    )
    project()
    with TestClient(create_app(store)) as client:
        day = get(client, "/api/academic/tutor/my-day", "john")["data"]
        assert [h["studentName"] for h in day["openHelpRequests"]] == ["Jane Johnson"]
        view = get(client, f"/api/v1/sessions/{live}/control-center", "john")["data"]
    alex_row = next(s for s in view["students"] if s["name"] == "Alex Thompson")
    (handled,) = alex_row["helpRequests"]
    assert handled["status"] == "RESOLVED" and handled["response"].startswith("Check")
    assert handled["handledBy"] == str(john.user_id)
    assert (
        handled["responseSeconds"] is not None
        and handled["resolutionSeconds"] >= handled["responseSeconds"]
    )
    assert alex_row["openHelpRequest"] is None and handled["waitingSeconds"] is None
    centres.close()


def test_the_control_center_as_it_was_at_any_instant(client: TestClient[Litestar]) -> None:
    from datetime import datetime, timedelta

    live = session_id(LIVE)
    log = get(client, f"/api/v1/sessions/{live}/log", "david")["entries"]
    by_type = {e["type"]: e for e in reversed(log)}
    first_help = min(e["occurredAt"] for e in log if e["type"] == "HelpRequestRaised")
    just_before = datetime.fromisoformat(first_help.replace("Z", "+00:00")) - timedelta(
        microseconds=1
    )
    url = f"/api/v1/sessions/{live}/control-center"
    past = get(client, url, "david", params={"at": just_before.isoformat()})
    assert past["data"]["status"] == "LIVE" and past["data"]["openHelpRequests"] == 0
    assert past["version"] < get(client, url, "david")["version"]
    now = get(client, url, "john", params={"at": log[-1]["occurredAt"]})["data"]
    assert now["openHelpRequests"] == 2
    before_start = by_type["SessionScheduled"]["occurredAt"]
    assert get(client, url, "david", params={"at": before_start})["data"]["status"] == "SCHEDULED"
    get(client, url, "alex", 403, params={"at": before_start})
    get(client, url, "david", 404, params={"at": "2000-01-01T00:00:00Z"})
    get(client, url, "david", 422, params={"at": "2026-01-01T00:00:00"})
    get(
        client, url, "david", 422, params={"at": "2999-01-01T00:00:00+00:00"}
    )  # the future cannot be replayed


def test_a_removed_student_and_their_parent_no_longer_see_the_session(tmp_path: Path) -> None:
    from services.command.application import TutoringCentres
    from services.command.commands.sessions import RemoveStudent
    from services.command.seed import seed
    from shared import events

    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    sessions = seed(centres)
    tomorrow = sessions["Variables Deep Dive"]
    john = Actor(
        user_id=demo_person("john").id, role=demo_person("john").role, centre_id=DEMO_CENTRE
    )
    centres.handle(
        john,
        RemoveStudent(
            session_id=tomorrow, student_id=demo_person("jane").id, reason="moved to another group"
        ),
    )
    store = read_store(tmp_path)
    apply_all(
        store,
        [(events.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 10_000)],
    )
    with TestClient(create_app(store)) as client:
        url = f"/api/v1/sessions/{tomorrow}/control-center"
        get(client, url, "jane", 404)
        get(client, url, "robert", 404)  # Jane's parent; Sophia is not in this session
        assert [s["name"] for s in get(client, url, "lisa")["data"]["students"]] == [
            "Alex Thompson"
        ]
    centres.close()


def test_students_and_parents_see_their_own_overview_without_internal_notes(tmp_path: Path) -> None:
    from services.command.application import TutoringCentres
    from services.command.commands.notes import WriteNote
    from services.command.seed import seed
    from shared import events
    from shared.events import NoteVisibility

    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    seed(centres)
    john = Actor(
        user_id=demo_person("john").id, role=demo_person("john").role, centre_id=DEMO_CENTRE
    )
    sophia = demo_person("sophia").id
    centres.handle(
        john,
        WriteNote(
            student_id=sophia, content="Excellent progress", visibility=NoteVisibility.EXTERNAL
        ),
    )
    centres.handle(
        john,
        WriteNote(
            student_id=sophia,
            content="Struggled with inference",
            visibility=NoteVisibility.INTERNAL,
        ),
    )
    store = read_store(tmp_path)
    apply_all(
        store,
        [(events.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 10_000)],
    )
    url = f"/api/v1/students/{sophia}/overview"
    with TestClient(create_app(store)) as client:
        own = get(client, url, "sophia")["data"]
        parent = get(client, url, "robert")["data"]
        staff = get(client, url, "david")["data"]
        get(client, url, "lisa", 404)  # not her child
        get(client, url, "jane", 404)  # another student
        get(client, url, "emily", 403)
    assert own == parent
    assert [n["content"] for n in own["notes"]] == ["Excellent progress"]
    assert {n["content"] for n in staff["notes"]} == {
        "Excellent progress",
        "Struggled with inference",
    }
    assert own["attendanceSummary"]["ABSENT"] == 1
    (catch_up,) = own["catchUps"]
    assert catch_up["sessionTitle"] == "HTML Fundamentals" and catch_up["status"] == "PENDING"
    assert {s["title"] for s in own["today"]} == {
        "Multi-Student Video Session",
        "HTML Basics Workshop",
    }
    centres.close()


def test_the_tutor_sees_each_students_exercise_and_what_waits_for_marking(
    client: TestClient[Litestar],
) -> None:
    live = session_id(LIVE)
    view = get(client, f"/api/v1/sessions/{live}/control-center", "john")["data"]
    rows = {s["name"]: s for s in view["students"]}
    jane, alex, michael = rows["Jane Johnson"], rows["Alex Thompson"], rows["Michael Lee"]
    assert (jane["currentExercise"]["title"], jane["currentExercise"]["progress"]) == (
        "Loops check",
        40,
    )
    assert alex["currentExercise"]["title"] == "Loops check"  # the quiz, still to start
    assert alex["currentExercise"]["status"] == "ASSIGNED" and alex["workToGrade"] == 1
    assert michael["currentExercise"] is None
    (marked,) = michael["work"]
    assert (marked["status"], marked["score"], marked["xpAwarded"]) == ("AUTO_GRADED", 3.0, 50)
    assert view["workToGrade"] == 1

    day = get(client, "/api/academic/tutor/my-day", "john")["data"]
    assert [(w["kind"], w["title"], w["studentName"]) for w in day["toGrade"]] == [
        ("EXERCISE", "Explain your loop", "Alex Thompson"),
        ("HOMEWORK", "A page of your own", "Jane Johnson"),
    ]
    assert day["stats"]["toGrade"] == 2
    assert get(client, "/api/academic/tutor/my-day", "maria")["data"]["toGrade"] == []


def test_a_student_sees_their_exercises_help_homework_and_xp_but_never_a_key(
    client: TestClient[Litestar],
) -> None:
    michael = demo_person("michael").id
    own = get(client, f"/api/v1/students/{michael}/overview", "michael")["data"]
    assert own["exercises"]["current"] == []
    assert [w["title"] for w in own["exercises"]["recent"]] == ["Loops check"]
    assert own["xp"] == {"total": 50, "level": 1, "toNextLevel": 50}
    assert own["openHelpRequest"] is None
    alex = get(client, f"/api/v1/students/{demo_person('alex').id}/overview", "lisa")[
        "data"
    ]  # his parent
    assert (
        alex["openHelpRequest"]["priority"] == "URGENT"
        and alex["openHelpRequest"]["sessionTitle"] == LIVE
    )
    assert [(h["title"], h["status"], h["overdue"]) for h in alex["homework"]] == [
        ("Loops practice", "NOT_STARTED", False)
    ]
    assert {w["title"] for w in alex["exercises"]["current"]} == {"Loops check"}
    assert all("answers" not in w for w in alex["exercises"]["recent"])

    quiz = next(
        e["exerciseId"]
        for e in get(client, "/api/v1/exercises", "john")["data"]["exercises"]
        if e["title"] == "Loops check"
    )
    for_students = get(client, f"/api/v1/exercises/{quiz}", "jane")["data"]
    assert for_students["questions"][0]["options"] == ["2", "3", "4"]
    assert all("acceptedAnswers" not in q for q in for_students["questions"])
    assert get(client, f"/api/v1/exercises/{quiz}", "john")["data"]["questions"][0][
        "acceptedAnswers"
    ] == ["3"]
    get(client, "/api/v1/exercises", "jane", 403)
    get(client, f"/api/v1/exercises/{quiz}", "robert", 403)
    assert (
        client.get(f"/api/v1/exercises/{quiz}", headers=auth("admin", EMPTY_CENTRE)).status_code
        == 404
    )

    jane = demo_person("jane").id
    homework = next(
        h for h in get(client, f"/api/v1/students/{jane}/overview", "jane")["data"]["homework"]
    )
    assert (homework["status"], homework["onTime"], homework["xpAwarded"]) == (
        "SUBMITTED",
        True,
        20,
    )
    detail = get(client, f"/api/v1/homework/{homework['homeworkId']}", "robert")["data"]
    assert detail["teacherName"] == "John Teacher" and detail["answers"]
    get(client, f"/api/v1/homework/{homework['homeworkId']}", "alex", 404)
    get(client, f"/api/v1/homework/{homework['homeworkId']}", "lisa", 404)


def test_the_academic_profile_shows_levels_to_the_family_and_reasons_only_to_staff(
    client: TestClient[Litestar],
) -> None:
    sophia, jane, alex = (demo_person(h).id for h in ("sophia", "jane", "alex"))
    own = get(client, f"/api/v1/students/{sophia}/overview", "sophia")["data"]
    parent = get(client, f"/api/v1/students/{sophia}/overview", "robert")["data"]
    staff = get(client, f"/api/v1/students/{sophia}/overview", "david")["data"]
    assert own == parent
    (subject,) = own["academicProfile"]
    assert (
        subject["courseId"],
        subject["schoolGrade"],
        subject["workingLevel"],
        subject["gap"],
    ) == ("algebra-fundamentals", 5, 4, 1)
    assert [(h["changeType"], h["previousLevel"], h["newLevel"]) for h in subject["history"]] == [
        ("DIAGNOSTIC_TEST", 3, 4),
        ("ASSESSMENT_RESULT", None, 3),
    ]
    assert not {"reason", "changedBy"} & {k for h in subject["history"] for k in h}
    assert subject["history"][1]["schoolGrade"] == 5
    assert "assessmentNotes" not in subject and "assessedBy" not in subject
    (staff_subject,) = staff["academicProfile"]
    assert staff_subject["assessmentNotes"] == "Placement test: number sense is shaky"
    assert staff_subject["history"][0]["reason"].startswith("Diagnostic retest")
    assert staff_subject["assessedByName"] == "David Martinez"

    # Alex: the second override superseded the first; Lisa (his parent) sees only the active one.
    alex_family = get(client, f"/api/v1/students/{alex}/overview", "lisa")["data"]
    (active,) = alex_family["contentAssignments"]
    assert (active["exerciseId"], active["status"]) == ("conditionals-4", "ACTIVE")
    assert "reason" not in active and "endedContentAssignments" not in alex_family
    alex_staff = get(client, f"/api/v1/students/{alex}/overview", "john")["data"]
    (superseded,) = alex_staff["endedContentAssignments"]
    assert (superseded["exerciseId"], superseded["status"]) == ("conditionals-3", "SUPERSEDED")
    assert alex_staff["contentAssignments"][0]["replaces"] == superseded["assignmentId"]
    assert alex_staff["contentAssignments"][0]["assignedByName"] == "John Teacher"

    # Jane: her override was withdrawn; the family sees nothing, staff see why.
    assert (
        get(client, f"/api/v1/students/{jane}/overview", "robert")["data"]["contentAssignments"]
        == []
    )
    jane_staff = get(client, f"/api/v1/students/{jane}/overview", "sarah")["data"]
    (withdrawn,) = jane_staff["endedContentAssignments"]
    assert (withdrawn["status"], withdrawn["withdrawReason"]) == (
        "WITHDRAWN",
        "Covered in the workshop",
    )

    get(client, f"/api/v1/students/{sophia}/overview", "lisa", 404)
    get(client, f"/api/v1/students/{sophia}/overview", "emily", 403)
    other_centre = auth("sarah", EMPTY_CENTRE)
    get(client, f"/api/v1/students/{sophia}/overview", "sarah", 404, headers=other_centre)
