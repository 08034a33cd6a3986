"""What the scheduler records, as the query API shows it: a session's reminder, its automatic
completion and the attendance reminder in the Control Center; escalated help requests first
within their priority; catch-ups marked overdue and reminded in the catch-up list and My Day;
homework reminders. The timers' commands are issued as SYSTEM, as the scheduler issues them;
every answer is checked against the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.commands.catch_ups import AssignCatchUp
from services.command.commands.exercises import PublishExercise
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.homework import AssignHomework, SubmitHomework
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EndSession, EnrolStudent, StartSession
from services.command.commands.timers import (
    CompleteOverdueSession,
    EscalateHelpRequest,
    MarkCatchUpOverdue,
    MarkHomeworkOverdue,
    SendAttendanceReminder,
    SendCatchUpReminder,
    SendHomeworkReminder,
    SendSessionReminder,
)
from services.query.app import create_app
from shared.events import AttendanceStatus, ExerciseType, HelpPriority, Question
from shared.eventstore import EventStoreSettings
from shared.settings import load
from shared.tenancy.permissions import system_actor
from tests.api.conformance import checked
from tests.api.test_reports import World, _session
from tests.builders import plan, register_centre
from tests.readside import read_store


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    store = read_store(tmp_path)
    alpha, beta = register_centre(centres, "alpha"), register_centre(centres, "beta")
    with TestClient(create_app(store)) as client:  # every answer checked against the schema
        yield World(centres, store, checked(client), alpha, beta)
    store.close()
    centres.close()


def control_center(world: World, session: UUID, who: str = "tutor") -> dict[str, Any]:
    data: dict[str, Any] = world.get(f"/api/v1/sessions/{session}/control-center", who)["data"]
    return data


def my_day(world: World) -> dict[str, Any]:
    data: dict[str, Any] = world.get("/api/academic/tutor/my-day", "tutor")["data"]
    return data


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_session_shows_its_reminder_its_automatic_completion_and_whom_attendance_lacks(
    world: World,
) -> None:
    alpha, centres, system = world.alpha, world.centres, system_actor("alpha")
    session = UUID(centres.handle(alpha["tutor"], plan(alpha["tutor"])).body["sessionId"])
    for student in ("ann", "ben"):
        centres.handle(
            alpha["tutor"], EnrolStudent(session_id=session, student_id=alpha[student].user_id)
        )
    world.project()
    before = control_center(world, session)
    assert "remindedAt" not in before and "autoCompleted" not in before
    starts, ends = at(before["startsAt"]), at(before["endsAt"])

    centres.handle(
        system, SendSessionReminder(session_id=session, starts_at=starts, minutes_before=15)
    )
    world.project()
    reminded = control_center(world, session)
    assert reminded["status"] == "SCHEDULED" and reminded["remindedAt"]
    # Students see the reminder of their own session too.
    assert control_center(world, session, "ann")["remindedAt"] == reminded["remindedAt"]

    centres.handle(alpha["tutor"], StartSession(session_id=session))
    centres.handle(
        alpha["tutor"],
        MarkAttendance(
            session_id=session,
            records=[
                AttendanceRecord(student_id=alpha["ben"].user_id, status=AttendanceStatus.PRESENT)
            ],
        ),
    )
    centres.handle(system, CompleteOverdueSession(session_id=session, ends_at=ends))
    centres.handle(system, SendAttendanceReminder(session_id=session))
    world.project()
    done = control_center(world, session)
    assert (done["status"], done["autoCompleted"]) == ("COMPLETED", True)
    reminder = done["attendanceReminder"]
    assert reminder["unmarkedStudentIds"] == [str(alpha["ann"].user_id)]
    assert reminder["sentAt"] >= done["endedAt"]

    # A session its tutor ended is not marked as completed by the system.
    ended_by_hand = _session(world, "tutor", "ann")
    centres.handle(alpha["tutor"], EndSession(session_id=ended_by_hand))
    world.project()
    by_hand = control_center(world, ended_by_hand)
    assert by_hand["status"] == "COMPLETED" and "autoCompleted" not in by_hand
    assert "attendanceReminder" not in by_hand


def test_an_escalated_help_request_shows_when_and_comes_first_within_its_priority(
    world: World,
) -> None:
    alpha, centres = world.alpha, world.centres
    session = _session(world, "tutor", "ann", "ben", "cal")
    for student, priority in (
        ("ann", HelpPriority.HIGH),
        ("ben", HelpPriority.HIGH),
        ("cal", HelpPriority.URGENT),
    ):
        centres.handle(alpha[student], RaiseHelpRequest(session_id=session, priority=priority))
    world.project()
    ben = next(
        h for h in my_day(world)["openHelpRequests"] if h["studentId"] == str(alpha["ben"].user_id)
    )
    assert "escalatedAt" not in ben
    centres.handle(
        system_actor("alpha"),
        EscalateHelpRequest(
            session_id=session,
            student_id=alpha["ben"].user_id,
            help_request_id=UUID(ben["helpRequestId"]),
            sla_due_at=at(ben["slaDueAt"]),
        ),
    )
    world.project()
    queue = my_day(world)["openHelpRequests"]
    # URGENT first; then, of the two HIGH, Ben's (escalated) before Ann's (raised earlier).
    assert [h["studentName"] for h in queue] == ["Cal", "Ben", "Ann"]
    assert queue[1]["escalatedAt"] and queue[1]["status"] == "PENDING"  # still to be answered
    assert "escalatedAt" not in queue[2]
    rows = control_center(world, session)["students"]
    assert [r["name"] for r in rows] == ["Cal", "Ben", "Ann"]
    assert rows[1]["openHelpRequest"]["escalatedAt"] == queue[1]["escalatedAt"]
    # The student sees their own request was escalated.
    (own,) = control_center(world, session, "ben")["students"]
    assert own["helpRequests"][0]["escalatedAt"] == queue[1]["escalatedAt"]


def test_a_catch_up_marked_overdue_is_overdue_in_the_list_and_my_day_before_the_view_says_so(
    world: World,
) -> None:
    """The scheduler's clock may run ahead of the query API's: what it recorded counts."""
    alpha, centres, system = world.alpha, world.centres, system_actor("alpha")
    session = _session(world, "tutor", "ann", "ben")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)

    def assign(student: str) -> str:
        result = centres.handle(
            alpha["tutor"],
            AssignCatchUp(
                session_id=session, student_id=alpha[student].user_id, due_at=due, reason="Ratios"
            ),
        )
        return str(result.body["catchUpId"])

    ann, ben = assign("ann"), assign("ben")
    centres.handle(system, SendCatchUpReminder(catch_up_id=UUID(ann), due_at=due))
    centres.handle(system, MarkCatchUpOverdue(catch_up_id=UUID(ann), due_at=due))
    world.project()

    overdue = world.get("/api/v1/catch-ups", "supervisor", overdue="true")["data"]["catchUps"]
    assert [c["catchUpId"] for c in overdue] == [ann]
    (row,) = overdue
    assert row["overdue"] is True and row["overdueAt"] and row["remindedAt"]
    assert row["status"] == "PENDING"  # still open: it can be completed late
    everything = world.get("/api/v1/catch-ups", "supervisor")["data"]["catchUps"]
    (other,) = [c for c in everything if c["catchUpId"] == ben]
    assert other["overdue"] is False and "overdueAt" not in other and "remindedAt" not in other

    catch_ups = my_day(world)["catchUps"]
    assert [c["catchUpId"] for c in catch_ups["overdue"]] == [ann]
    assert [c["catchUpId"] for c in catch_ups["pending"]] == [ben]
    assert catch_ups["overdue"][0]["overdueAt"] == row["overdueAt"]
    assert my_day(world)["stats"]["overdueCatchUps"] == 1
    (seat,) = [
        s
        for s in control_center(world, session)["students"]
        if s["studentId"] == str(alpha["ann"].user_id)
    ]
    assert seat["catchUps"][0]["overdue"] is True
    assert seat["catchUps"][0]["remindedAt"] == row["remindedAt"]


def test_homework_shows_when_its_reminder_went_out_and_that_it_was_marked_overdue(
    world: World,
) -> None:
    alpha, centres = world.alpha, world.centres
    exercise = UUID(
        centres.handle(
            alpha["tutor"],
            PublishExercise(
                title="Halves",
                course_id="maths",
                exercise_type=ExerciseType.NUMERICAL,
                questions=[Question(question_id="q1", prompt="1/2", accepted_answers=("0.5",))],
            ),
        ).body["exerciseId"]
    )
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    homework = centres.handle(
        alpha["tutor"],
        AssignHomework(
            student_id=alpha["ann"].user_id, title="Halves", exercise_ids=[exercise], due_at=due
        ),
    ).body["homeworkId"]
    world.project()
    assert "remindedAt" not in world.get(f"/api/v1/homework/{homework}", "ann")["data"]

    centres.handle(
        system_actor("alpha"), SendHomeworkReminder(homework_id=UUID(homework), due_at=due)
    )
    world.project()
    shown = world.get(f"/api/v1/homework/{homework}", "ann")["data"]
    assert shown["remindedAt"] and shown["status"] == "NOT_STARTED"
    ann = alpha["ann"].user_id
    (summary,) = world.get(f"/api/v1/students/{ann}/overview", "ann")["data"]["homework"]
    assert summary["remindedAt"] == shown["remindedAt"]
    assert shown["overdue"] is False and "overdueAt" not in shown

    # Marked overdue by the scheduler (its clock ahead of the query API's): overdue at once.
    centres.handle(
        system_actor("alpha"), MarkHomeworkOverdue(homework_id=UUID(homework), due_at=due)
    )
    world.project()
    shown = world.get(f"/api/v1/homework/{homework}", "ann")["data"]
    assert shown["overdue"] is True and shown["overdueAt"]
    (summary,) = world.get(f"/api/v1/students/{ann}/overview", "tutor")["data"]["homework"]
    assert summary["overdue"] is True and summary["overdueAt"] == shown["overdueAt"]
    # Handed in late: no longer overdue, and when it was marked stays on record.
    centres.handle(
        alpha["ann"],
        SubmitHomework(homework_id=UUID(homework), answers={exercise: {"q1": "0.5"}}),
    )
    world.project()
    shown = world.get(f"/api/v1/homework/{homework}", "ann")["data"]
    assert shown["overdue"] is False and shown["overdueAt"] == summary["overdueAt"]
    # Another centre cannot read it.
    world.get(f"/api/v1/homework/{homework}", "ann", expect=404, centre=world.beta)
