"""Exercise work in a live session: the tutor sets it, the student does it, the tutor marks it."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from services.command.commands.exercises import (
    AssignExercise,
    GradeExercise,
    ReportExerciseProgress,
    StartExercise,
    SubmitExercise,
)
from services.command.domain.aggregate import InvalidValue, NotFound, RuleViolated
from services.command.domain.exercise import Exercise
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from services.command.handlers.common import seat, seat_holding, session_run_by
from services.command.responses import ExerciseSetView, WorkAssigned, WorkView
from services.command.unit_of_work import UnitOfWork


def assign_exercise(command: AssignExercise, uow: UnitOfWork) -> ExerciseSetView:
    """Set an exercise for some students of a live session, or for all of them, at once."""
    chosen_ids = command.student_ids
    if chosen_ids is not None and len(set(chosen_ids)) != len(chosen_ids):
        raise InvalidValue("a student appears twice", field="student_ids")
    session = session_run_by(uow, command.session_id)
    exercise = uow.find(Exercise, command.exercise_id, field="exercise_id")
    chosen = sorted(session.roster) if chosen_ids is None else list(chosen_ids)
    if not chosen:
        raise RuleViolated("nobody is enrolled in this session")
    work = []
    for index, student_id in enumerate(chosen):
        if not session.is_enrolled(student_id):
            raise InvalidValue(
                "the student is not enrolled in this session", field=f"student_ids[{index}]"
            )
        work_id = seat(uow, session, student_id).assign_exercise(session, exercise, by=uow.actor)
        work.append(WorkAssigned(student_id=student_id, work_id=work_id))
    return ExerciseSetView(
        session_id=command.session_id,
        exercise_id=command.exercise_id,
        title=exercise.title,
        auto_gradable=exercise.auto_gradable,
        work=work,
    )


def _own_work(
    uow: UnitOfWork, session_id: UUID, work_id: UUID, act: Callable[[Session, Seat], object]
) -> WorkView:
    """A student acts on their own work; nobody else's work is ever found."""
    session = uow.find(Session, session_id)
    own = seat(uow, session, uow.actor.user_id)
    if work_id not in own.work:
        raise NotFound("no such work of yours in this session")
    act(session, own)
    return WorkView.of(own, work_id)


def start_exercise(command: StartExercise, uow: UnitOfWork) -> WorkView:
    return _own_work(
        uow,
        command.session_id,
        command.work_id,
        lambda session, own: own.start_exercise(session, command.work_id, by=uow.actor),
    )


def report_exercise_progress(command: ReportExerciseProgress, uow: UnitOfWork) -> WorkView:
    return _own_work(
        uow,
        command.session_id,
        command.work_id,
        lambda session, own: own.report_progress(
            session, command.work_id, command.percent, by=uow.actor
        ),
    )


def submit_exercise(command: SubmitExercise, uow: UnitOfWork) -> WorkView:
    def submit(session: Session, own: Seat) -> None:
        exercise = uow.get(Exercise, own.work[command.work_id].exercise_id)
        own.submit_exercise(session, command.work_id, exercise, command.answers, by=uow.actor)

    return _own_work(uow, command.session_id, command.work_id, submit)


def grade_exercise(command: GradeExercise, uow: UnitOfWork) -> WorkView:
    """A tutor marks handed-in work that has no answer key."""
    session = session_run_by(uow, command.session_id)
    holder = seat_holding(
        uow,
        session,
        [*session.roster, *session.removed_students],  # still gradable
        lambda s: command.work_id in s.work,
        "no such work in this session",
    )
    holder.grade_exercise(
        command.work_id, by=uow.actor, score=command.score, feedback=command.feedback
    )
    return WorkView.of(holder, command.work_id)
