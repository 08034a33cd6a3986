"""The command side's plumbing: every verb is one type with one handler, one permission and one
route; a handler decides on a unit of work, which stores what changed, in the order it changed,
in one commit; an answer replays byte for byte, even one recorded before answers were types."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_origin, get_type_hints
from uuid import UUID

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.command import commands
from services.command.application import TutoringCentres
from services.command.bus import VERBS
from services.command.commands.base import Command
from services.command.commands.classes import AddClassMember, CreateClass, ScheduleClassSession
from services.command.commands.exercises import AssignExercise, PublishExercise, SubmitExercise
from services.command.commands.homework import SubmitHomework
from services.command.commands.seats import MarkAttendance
from services.command.commands.series import CancelSeries, ScheduleSeries
from services.command.commands.sessions import ScheduleSession
from services.command.handlers import sessions
from services.command.http.app import create_app
from services.command.http.problems import wire_field
from services.command.http.routes import ROUTES
from services.command.idempotency import CommandReceipt, IdempotencyKey
from services.command.responses import SessionView, WithStatus
from services.command.unit_of_work import UnitOfWork
from shared.events import SessionMode, SessionStatus
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.builders import Centre, register_centre

LATER = datetime(2031, 3, 3, 16, tzinfo=UTC)


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    app = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield app
    app.close()


@pytest.fixture
def alpha(centres: TutoringCentres) -> Centre:
    return register_centre(centres, "alpha")


def every_command() -> set[type[Command]]:
    found: set[type[Command]] = set()
    for module in pkgutil.iter_modules(commands.__path__):
        for value in vars(importlib.import_module(f"{commands.__name__}.{module.name}")).values():
            if isinstance(value, type) and issubclass(value, Command) and value is not Command:
                found.add(value)
    return {c for c in found if not c.__name__.endswith("Command")}  # bases of several verbs


def test_every_command_has_one_handler_one_permission_and_one_route() -> None:
    assert set(VERBS) == every_command()
    routed = [route.command for route in ROUTES]
    assert sorted(c.__name__ for c in routed) == sorted(c.__name__ for c in set(routed))
    assert set(routed) == {command for command, verb in VERBS.items() if verb.over_http}
    for verb in VERBS.values():
        assert verb.handler.__module__.startswith("services.command.handlers.")
        assert verb.answers.__module__ == "services.command.responses"


def test_a_handler_decides_on_a_unit_of_work_and_nothing_is_stored_before_the_commit(
    centres: TutoringCentres, alpha: Centre
) -> None:
    before = centres.position
    uow = UnitOfWork(centres, centres.directory, alpha["tutor"])
    view = sessions.schedule_session(
        ScheduleSession(
            title="Fractions",
            starts_at=LATER,
            ends_at=LATER + timedelta(hours=1),
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/f",
        ),
        uow,
    )
    assert isinstance(view, SessionView) and view.status is SessionStatus.SCHEDULED
    assert view.tutor_id == alpha["tutor"].user_id and view.warnings == []
    assert [type(a).__name__ for a in uow.changed()] == ["Session", "TimetableWeek"]
    assert centres.position == before


def topics_of(centres: TutoringCentres, after: int) -> list[str]:
    return [n.topic for n in centres.recorder.select_notifications(after + 1, 1_000)]


def test_a_commit_stores_aggregates_in_the_order_they_began_to_change(
    centres: TutoringCentres, alpha: Centre
) -> None:
    admin, tutor = alpha["admin"], alpha["tutor"]
    cohort = UUID(
        centres.handle(
            admin, CreateClass(name="Year 5", subject="maths", teacher_id=tutor.user_id)
        ).body["classId"]
    )
    centres.handle(admin, AddClassMember(class_id=cohort, student_id=alpha["ann"].user_id))
    before = centres.position
    centres.handle(
        admin,
        ScheduleClassSession(
            class_id=cohort,
            title="Class",
            starts_at=LATER,
            ends_at=LATER + timedelta(hours=1),
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/c",
        ),
    )
    # The session is scheduled and enrolled, the class notes it, then the timetable books it.
    assert topics_of(centres, before) == [
        "SessionScheduled",
        "StudentEnrolled",
        "ClassSessionsScheduled",
        "TimetableSessionBooked",
    ]

    series = centres.handle(
        tutor,
        ScheduleSeries(
            days_of_week=[1],
            start_time="16:00",
            first_date=LATER.date(),
            weeks=2,
            title="Weekly",
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/w",
        ),
    )
    before = centres.position
    centres.handle(tutor, CancelSeries(series_id=UUID(series.body["seriesId"]), reason="holiday"))
    assert topics_of(centres, before) == [
        "SessionSeriesCancelled",
        "SessionCancelled",
        "SessionCancelled",
        "TimetableSessionReleased",
        "TimetableSessionReleased",
    ]


def post(
    client: TestClient[Litestar],
    centre: Centre,
    path: str,
    body: bytes,
    key: str,
) -> tuple[int, bytes, dict[str, str]]:
    response = client.post(
        path,
        content=body,
        headers=centre.auth("tutor") | {"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    return response.status_code, response.content, dict(response.headers)


def test_a_replay_answers_the_same_bytes(centres: TutoringCentres, alpha: Centre) -> None:
    body = msgspec.json.encode(
        {
            "title": "Fractions",
            "startsAt": LATER.isoformat(),
            "endsAt": (LATER + timedelta(hours=1)).isoformat(),
            "mode": "ONLINE",
            "meetingLink": "https://meet.example.org/f",
        }
    )
    with TestClient(create_app(centres, own_resources=False)) as client:
        first = post(client, alpha, "/api/v1/sessions", body, "monday")
        again = post(client, alpha, "/api/v1/sessions", body, "monday")
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert again[2]["idempotent-replayed"] == "true"
    assert msgspec.json.decode(first[1])["startsAt"] == "2031-03-03T16:00:00+00:00"


def test_an_answer_recorded_before_answers_were_types_replays_as_it_was(
    centres: TutoringCentres, alpha: Centre
) -> None:
    """A receipt keeps the body it answered; whatever shape answers have now, a retry with
    its key answers that body, with the position of the store."""
    body = b'{"exerciseId": "b5d3f1e4-3c4a-4f7e-9d51-5a3b2c1d0e9f"}'
    path = f"/api/v1/sessions/{UUID(int=1)}/work"
    digest = hashlib.sha256(f"POST {path}\n".encode() + body).hexdigest()
    recorded = {
        "sessionId": str(UUID(int=1)),
        "exerciseId": "b5d3f1e4-3c4a-4f7e-9d51-5a3b2c1d0e9f",
        "title": "Halves",
        "autoGradable": True,
        "score": 7.0,
        "work": [],
    }
    centres.save(
        CommandReceipt.record(alpha["tutor"], IdempotencyKey("old-one", digest), 201, recorded)
    )
    with TestClient(create_app(centres, own_resources=False)) as client:
        status, content, headers = post(client, alpha, path, body, "old-one")
    assert status == 201 and headers["idempotent-replayed"] == "true"
    assert content == msgspec.json.encode({**recorded, "position": centres.position})


@pytest.mark.parametrize(
    ("command", "field", "wire"),
    [
        (MarkAttendance, "records[2].student_id", "records[2].studentId"),
        (MarkAttendance, "session_id", "sessionId"),
        (MarkAttendance, "due_at", "dueAt"),  # not the command's: named as msgspec would
        (PublishExercise, "questions[0].accepted_answers", "questions[0].acceptedAnswers"),
        (SubmitExercise, "answers.q_1.part_b", "answers.q_1.part_b"),  # the client's own keys
        (SubmitHomework, f"answers.{UUID(int=7)}.a_b", f"answers.{UUID(int=7)}.a_b"),
        (AssignExercise, "student_ids[3]", "studentIds[3]"),
        (ScheduleSeries, "students[1].student_id", "students[1].studentId"),
        (ScheduleSession, "Idempotency-Key", "Idempotency-Key"),
        (ScheduleSession, "body", "body"),
    ],
)
def test_a_problem_names_the_field_as_the_client_sent_it(
    command: type[Command], field: str, wire: str
) -> None:
    """The domain names a field by the command's attribute; HTTP answers with its wire name."""
    assert wire_field(command, field) == wire


def test_a_verb_answering_another_status_names_it_for_its_documentation() -> None:
    """A handler that answers :class:`WithStatus` says which statuses besides its usual one it
    may answer (the OpenAPI document lists them; a client sees nothing undocumented)."""
    for verb in VERBS.values():
        answer = get_type_hints(verb.handler)["return"]
        if get_origin(answer) is WithStatus:
            assert verb.also, f"{verb.name} answers WithStatus but names no other status"
