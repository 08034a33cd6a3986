"""The centre's catalogue of exercises."""

from __future__ import annotations

from uuid import uuid4

from services.command.commands.exercises import PublishExercise, RetireExercise
from services.command.domain.exercise import Exercise
from services.command.responses import ExerciseView
from services.command.unit_of_work import UnitOfWork


def publish_exercise(command: PublishExercise, uow: UnitOfWork) -> ExerciseView:
    uow.centre()
    exercise = Exercise.publish(
        uuid4(),
        uow.actor.centre_id,
        by=uow.actor,
        title=command.title,
        course_id=command.course_id,
        exercise_type=command.exercise_type,
        difficulty=command.difficulty,
        questions=command.questions,
        instructions=command.instructions,
        time_limit_minutes=command.time_limit_minutes,
    )
    uow.add(exercise)
    return ExerciseView.of(exercise)


def retire_exercise(command: RetireExercise, uow: UnitOfWork) -> ExerciseView:
    exercise = uow.find(Exercise, command.exercise_id)
    exercise.retire(by=uow.actor, reason=command.reason)
    return ExerciseView.of(exercise)
