"""Builders for the timers' tests: a centre's sessions, help requests, catch-ups and homework,
and the events the store holds since a position."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from nats.js import JetStreamContext

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


async def relay_once(js: JetStreamContext, centres: TutoringCentres, after: int) -> int:
    """Publish the store's events after ``after`` to TP_EVENTS as the relay does (same
    subjects, same de-duplication id); the position reached."""
    for n in centres.recorder.select_notifications(after + 1, 1_000):
        event = events.decode(n.state, n.topic)
        await js.publish(
            events.subject_for(event),
            n.state,
            headers={
                "Nats-Msg-Id": f"tutorpulse:{n.id}",
                "Tp-Notification-Id": str(n.id),
                "Tp-Event-Type": n.topic,
            },
        )
        after = n.id
    return after


async def relay_until(js: JetStreamContext, centres: TutoringCentres, stop: asyncio.Event) -> None:
    """Relay every event the store records until ``stop`` is set."""
    position = 0
    while not stop.is_set():
        position = await relay_once(js, centres, position)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def eventually(
    condition: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.05
) -> None:
    """Wait until ``condition()`` holds (counts, not time: the timeout only ends a test that
    would otherwise hang)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(every)


async def timers_settled(js: JetStreamContext, timeout: float = 30.0) -> None:
    """Wait until no fired timer waits for the scheduler or is held unacknowledged."""

    async def idle() -> bool:
        info = await js.consumer_info("TP_TIMERS", "scheduler")
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    deadline = asyncio.get_running_loop().time() + timeout
    while not await idle():
        assert asyncio.get_running_loop().time() < deadline, "fired timers never settled"
        await asyncio.sleep(0.05)
