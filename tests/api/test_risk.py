"""Risk from the query API: the score in the student overview (staff only) and in My Day, and
supervisors told when a student's absences repeat, from events recorded through the commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.commands.exercises import (
    AssignExercise,
    PublishExercise,
    StartExercise,
    SubmitExercise,
)
from services.command.commands.homework import AssignHomework, SubmitHomework
from services.command.commands.notifications import (
    ConfigureNotificationChannels,
    SetNotificationPreferences,
)
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.timers import MarkHomeworkOverdue
from services.notifier.planning import StoreDocuments, plan
from services.query.app import create_app
from shared import events
from shared.events import AttendanceStatus, ExerciseType, Question
from shared.events.notifications import NotificationChannel
from shared.eventstore import EventStoreSettings
from shared.notifications import NotificationType
from shared.readmodels.documents import STUDENT
from shared.readmodels.projector import apply_all
from shared.settings import load
from shared.tenancy.permissions import system_actor
from tests.api.conformance import checked
from tests.api.test_reports import World, _session
from tests.builders import register_centre
from tests.readside import read_store

ABSENT, PRESENT, EXCUSED = (
    AttendanceStatus.ABSENT,
    AttendanceStatus.PRESENT,
    AttendanceStatus.EXCUSED,
)


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


def lesson(world: World, hours_ago: float, **marks: AttendanceStatus) -> UUID:
    """A session of the tutor that started ``hours_ago``, its students marked so."""
    session = _session(world, "tutor", *marks, hours_from_now=-hours_ago)
    mark(world, session, **marks)
    return session


def mark(world: World, session: UUID, **marks: AttendanceStatus) -> None:
    alpha = world.alpha
    records = [AttendanceRecord(student_id=alpha[s].user_id, status=st) for s, st in marks.items()]
    world.centres.handle(alpha["tutor"], MarkAttendance(session_id=session, records=records))


def at_risk(world: World, who: str) -> list[dict[str, Any]]:
    items = world.get("/api/v1/notifications", who)["data"]["items"]
    return [i for i in items if i["type"] == "STUDENT_AT_RISK"]


def overview(world: World, who: str, student: str = "ann") -> dict[str, Any]:
    data: dict[str, Any] = world.get(
        f"/api/v1/students/{world.alpha[student].user_id}/overview", who
    )["data"]
    return data


def test_supervisors_and_admins_are_told_once_for_each_absence_that_repeats(world: World) -> None:
    lesson(world, 72, ann=ABSENT, ben=PRESENT)
    world.project()
    assert at_risk(world, "supervisor") == []  # one absence is not yet a pattern

    second = lesson(world, 48, ann=ABSENT, ben=ABSENT)
    world.project()
    ann = str(world.alpha["ann"].user_id)
    for who in ("supervisor", "admin"):
        (told,) = at_risk(world, who)
        assert told["title"] == "Ann has missed 2 sessions in a row"
        assert told["priority"] == "HIGH"
        assert told["link"] == f"/api/v1/students/{ann}/overview"
        assert "and from the session marked before it" in told["body"]
        assert "AEDT" in told["body"] or "AEST" in told["body"]  # the centre's time zone
    # Nobody else hears of it, and Ben's first absence tells nobody.
    for who in ("tutor", "ann", "parent", "ben", "finance"):
        assert at_risk(world, who) == []

    # Corrected to excused and back to absent: still that one absence, told once.
    mark(world, second, ann=EXCUSED)
    mark(world, second, ann=ABSENT)
    world.project()
    assert len(at_risk(world, "supervisor")) == 1

    lesson(world, 24, ann=ABSENT, ben=PRESENT)
    world.project()
    titles = [n["title"] for n in at_risk(world, "supervisor")]
    assert titles == ["Ann has missed 3 sessions in a row", "Ann has missed 2 sessions in a row"]
    # The other centre's staff hear nothing of it.
    assert at_risk_elsewhere(world) == []


def at_risk_elsewhere(world: World) -> list[dict[str, Any]]:
    items = world.get("/api/v1/notifications", "supervisor", centre=world.beta)["data"]["items"]
    return [i for i in items if i["type"] == "STUDENT_AT_RISK"]


def test_an_earlier_session_marked_absent_after_a_later_one_was_attended_tells_nobody(
    world: World,
) -> None:
    earlier = _session(world, "tutor", "ann", hours_from_now=-48)
    lesson(world, 72, ann=ABSENT)
    lesson(world, 24, ann=PRESENT)
    mark(world, earlier, ann=ABSENT)
    world.project()
    assert at_risk(world, "supervisor") == []


def test_the_score_shows_to_staff_in_the_overview_and_my_day_but_not_to_the_family(
    world: World,
) -> None:
    lesson(world, 240, ann=PRESENT, ben=PRESENT)
    lesson(world, 72, ann=ABSENT, ben=PRESENT)
    lesson(world, 48, ann=ABSENT, ben=PRESENT)
    world.project()
    risk = overview(world, "tutor")["risk"]
    assert (risk["score"], risk["level"]) == (25, "MEDIUM")  # 10 days since she came
    assert [r["trigger"] for r in risk["reasons"]] == ["NO_RECENT_ATTENDANCE"]

    lesson(world, 24, ann=ABSENT, ben=PRESENT)
    world.project()
    risk = overview(world, "supervisor")["risk"]
    assert (risk["score"], risk["level"]) == (55, "HIGH")
    assert risk["reasons"] == [
        {
            "trigger": "CONSECUTIVE_ABSENCES",
            "points": 30,
            "message": "absent from the last 3 sessions in a row",
        },
        {"trigger": "NO_RECENT_ATTENDANCE", "points": 25, "message": "no attendance for 10 days"},
    ]
    assert overview(world, "tutor", "ben")["risk"] == {"score": 0, "level": "LOW", "reasons": []}
    # Ann sees the absences themselves, not the label (as would her parent: the same view).
    assert "risk" not in overview(world, "ann")
    assert overview(world, "ann")["attendanceSummary"]["ABSENT"] == 3

    day = world.get("/api/academic/tutor/my-day", "tutor")["data"]
    alerts = [a for a in day["alerts"] if a["type"] == "STUDENT_AT_RISK"]
    assert [(a["studentName"], a["risk"]["level"], a["risk"]["score"]) for a in alerts] == [
        ("Ann", "HIGH", 55)
    ]
    assert alerts[0]["message"] == (
        "Ann is at HIGH risk (55 points): absent from the last 3 sessions in a row; "
        "no attendance for 10 days"
    )
    # Coming back clears it: the streak and the days without attendance end together.
    lesson(world, 1, ann=PRESENT)
    world.project()
    assert overview(world, "tutor")["risk"]["level"] == "LOW"
    day = world.get("/api/academic/tutor/my-day", "tutor")["data"]
    assert [a for a in day["alerts"] if a["type"] == "STUDENT_AT_RISK"] == []


def test_homework_marked_overdue_counts_until_it_is_handed_in(world: World) -> None:
    alpha, centres = world.alpha, world.centres
    lesson(world, 2, ann=PRESENT)
    exercise = UUID(
        str(
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
    )
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=30)
    homework = [
        UUID(
            str(
                centres.handle(
                    alpha["tutor"],
                    AssignHomework(
                        student_id=alpha["ann"].user_id,
                        title=f"Halves {n}",
                        exercise_ids=[exercise],
                        due_at=due,
                    ),
                ).body["homeworkId"]
            )
        )
        for n in range(4)
    ]
    for h in homework:  # the scheduler's clock says they are overdue (the view's does not yet)
        centres.handle(system_actor("alpha"), MarkHomeworkOverdue(homework_id=h, due_at=due))
    world.project()
    kept = world.store.get(STUDENT, str(alpha["ann"].user_id))
    assert kept is not None and kept.doc.overdue_homework
    assert sorted(kept.doc.overdue_homework) == sorted(map(str, homework))
    risk = overview(world, "tutor")["risk"]
    assert (risk["score"], risk["level"]) == (20, "MEDIUM")
    assert sorted(r["message"] for r in risk["reasons"]) == [
        f"homework overdue: Halves {n}" for n in range(4)
    ]

    centres.handle(
        alpha["ann"], SubmitHomework(homework_id=homework[0], answers={exercise: {"q1": "0.5"}})
    )
    world.project()
    risk = overview(world, "tutor")["risk"]
    assert (risk["score"], risk["level"]) == (15, "LOW")
    kept = world.store.get(STUDENT, str(alpha["ann"].user_id))
    assert kept is not None and kept.doc.overdue_homework
    assert str(homework[0]) not in kept.doc.overdue_homework  # handed in (late): not owed


def test_a_rebuild_gives_the_same_risk_and_the_same_inbox(world: World, tmp_path: Path) -> None:
    for hours in (72, 48, 24):
        lesson(world, hours, ann=ABSENT)
    world.project()
    rebuilt = read_store(tmp_path, "rebuilt.sqlite")
    items = [
        (events.decode(n.state), n.id)
        for n in world.centres.recorder.select_notifications(1, 100_000)
    ]
    apply_all(rebuilt, items)
    with TestClient(create_app(rebuilt)) as client:
        answer = (
            checked(client)
            .get("/api/v1/notifications", headers=world.alpha.auth("supervisor"))
            .json()["data"]["items"]
        )
    assert answer == world.get("/api/v1/notifications", "supervisor")["data"]["items"]
    rebuilt.close()


def test_falling_and_low_scores_of_auto_marked_work_count(world: World) -> None:
    alpha, centres = world.alpha, world.centres
    session = lesson(world, 1, ann=PRESENT)  # started, so work can be set

    def exercise_scored(correct: int) -> None:
        questions = [
            Question(question_id=f"q{n}", prompt=f"{n}+{n}", accepted_answers=(str(2 * n),))
            for n in range(4)
        ]
        exercise = centres.handle(
            alpha["tutor"],
            PublishExercise(
                title="Doubles",
                course_id="maths",
                exercise_type=ExerciseType.NUMERICAL,
                questions=questions,
            ),
        ).body["exerciseId"]
        set_ = centres.handle(
            alpha["tutor"], AssignExercise(session_id=session, exercise_id=UUID(str(exercise)))
        ).body
        work = UUID(str(set_["work"][0]["workId"]))
        centres.handle(alpha["ann"], StartExercise(session_id=session, work_id=work))
        answers = {f"q{n}": str(2 * n) if n < correct else "wrong" for n in range(4)}
        centres.handle(
            alpha["ann"], SubmitExercise(session_id=session, work_id=work, answers=answers)
        )

    exercise_scored(3)
    exercise_scored(2)
    exercise_scored(1)
    world.project()
    risk = overview(world, "tutor")["risk"]
    assert risk["reasons"] == []  # 75%, 50%, 25%: two drops, an average of exactly 50%
    exercise_scored(0)
    world.project()
    risk = overview(world, "tutor")["risk"]
    assert (risk["score"], risk["level"]) == (35, "MEDIUM")
    assert [(r["trigger"], r["message"]) for r in risk["reasons"]] == [
        ("LOW_AVERAGE_SCORE", "average score 38% over the last 4 exercises"),
        ("FALLING_SCORES", "scores fell 3 times in a row"),
    ]


def test_the_supervisors_chosen_channels_carry_it_like_every_notification(world: World) -> None:
    alpha, centres = world.alpha, world.centres
    centres.handle(
        alpha["admin"],
        ConfigureNotificationChannels(
            centre_id="alpha",
            webhook_url="https://hooks.example.org/tp",
            webhook_secret="s" * 32,
            email_enabled=True,
        ),
    )
    centres.handle(
        alpha["supervisor"],
        SetNotificationPreferences(
            channels={NotificationType.STUDENT_AT_RISK: [NotificationChannel.WEBHOOK]}
        ),
    )
    lesson(world, 48, ann=ABSENT)
    lesson(world, 24, ann=ABSENT)
    start = world.position
    world.project()
    marks = [
        e
        for n in centres.recorder.select_notifications(start + 1, 1_000)
        if isinstance(e := events.decode(n.state), events.RepeatedAbsencesNoticed)
    ]
    docs = StoreDocuments(world.store, "alpha")
    planned = [d for e in marks for d in plan(e, docs)]
    (told,) = at_risk(world, "supervisor")
    assert [(d.channel, d.notification.person_id) for d in planned] == [
        (NotificationChannel.WEBHOOK, str(alpha["supervisor"].user_id))
    ]  # the admin chose no channel: the inbox only
    assert planned[0].notification.notification_id == told["notificationId"]
    assert planned[0].notification.title == told["title"]
