"""Builders for the timers' tests: a centre's sessions, help requests, catch-ups and homework,
and the events the store holds since a position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from services.command.application import TutoringCentres
from services.command.commands.catch_ups import AssignCatchUp
from services.command.commands.exercises import PublishExercise
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.homework import AssignHomework
from services.command.commands.sessions import EnrolStudent, ScheduleSession, StartSession
from shared import events
from shared.events import ExerciseType, HelpPriority, Question, SessionMode
from tests.builders import Centre

E = TypeVar("E", bound=events.Event)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def events_after(centres: TutoringCentres, position: int) -> list[events.Event]:
    """Every event the store recorded after ``position``, in commit order."""
    return [
        events.decode(n.state, n.topic)
        for n in centres.recorder.select_notifications(position + 1, 1_000_000)
    ]


def of_type(found: list[events.Event], kind: type[E]) -> list[E]:
    return [e for e in found if isinstance(e, kind)]


def session(
    centres: TutoringCentres,
    centre: Centre,
    *,
    starts_at: datetime,
    minutes: int = 60,
    students: tuple[str, ...] = ("ann",),
    live: bool = False,
) -> UUID:
    """A session of the centre's tutor with ``students`` enrolled (started if ``live``)."""
    tutor = centre["tutor"]
    result = centres.handle(
        tutor,
        ScheduleSession(
            title="Fractions",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/fractions",
        ),
    )
    session_id = UUID(str(result.body["sessionId"]))
    for handle in students:
        centres.handle(
            tutor, EnrolStudent(session_id=session_id, student_id=centre[handle].user_id)
        )
    if live:
        centres.handle(tutor, StartSession(session_id=session_id))
    return session_id


def help_request(
    centres: TutoringCentres, centre: Centre, session_id: UUID, student: str = "ann"
) -> tuple[UUID, datetime]:
    """A help request of ``student`` in the live session: its id and SLA due time."""
    body = centres.handle(
        centre[student], RaiseHelpRequest(session_id=session_id, priority=HelpPriority.URGENT)
    ).body
    return UUID(str(body["helpRequestId"])), datetime.fromisoformat(str(body["slaDueAt"]))


def catch_up(
    centres: TutoringCentres, centre: Centre, session_id: UUID, due_at: datetime, student: str
) -> UUID:
    body = centres.handle(
        centre["tutor"],
        AssignCatchUp(
            session_id=session_id,
            student_id=centre[student].user_id,
            due_at=due_at,
            reason="missed the start",
        ),
    ).body
    return UUID(str(body["catchUpId"]))


def homework(
    centres: TutoringCentres, centre: Centre, due_at: datetime, student: str = "ann"
) -> UUID:
    exercise = centres.handle(
        centre["tutor"],
        PublishExercise(
            title="Halves",
            course_id="maths",
            exercise_type=ExerciseType.NUMERICAL,
            questions=[Question(question_id="q1", prompt="1/2", accepted_answers=("0.5",))],
        ),
    ).body["exerciseId"]
    body = centres.handle(
        centre["tutor"],
        AssignHomework(
            student_id=centre[student].user_id,
            title="Halves at home",
            exercise_ids=[UUID(str(exercise))],
            due_at=due_at,
        ),
    ).body
    return UUID(str(body["homeworkId"]))
