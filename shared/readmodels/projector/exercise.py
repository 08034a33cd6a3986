"""The ``exercise`` document: an exercise of the catalogue."""

from __future__ import annotations

from shared import events as ev
from shared.readmodels.documents import EXERCISE, Exercise, ExerciseQuestion
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso


def _question(question: ev.Question) -> ExerciseQuestion:
    return ExerciseQuestion(
        question_id=question.question_id,
        prompt=question.prompt,
        points=question.points,
        options=list(question.options),
        accepted_answers=list(question.accepted_answers),
        tolerance=question.tolerance,
    )


@projects(ev.ExercisePublished)
def exercise_published(docs: Batch, e: ev.ExercisePublished) -> None:
    key = str(e.aggregate_id)
    docs.put(
        EXERCISE,
        key,
        e.centre_id,
        Exercise(
            exercise_id=key,
            title=e.title,
            course_id=e.course_id,
            exercise_type=e.exercise_type,
            difficulty=e.difficulty,
            instructions=e.instructions,
            time_limit_minutes=e.time_limit_minutes,
            questions=[_question(q) for q in e.questions],
            max_score=e.max_score,
            auto_gradable=e.auto_gradable,
            published_at=iso(e.occurred_at),
            published_by=str(e.actor_id),
        ),
    )


@projects(ev.ExerciseRetired)
def exercise_retired(docs: Batch, e: ev.ExerciseRetired) -> None:
    key = str(e.aggregate_id)
    exercise = docs.get(EXERCISE, key)
    assert exercise is not None  # published first: same aggregate, applied in order
    exercise.retired, exercise.retired_at, exercise.retire_reason = (
        True,
        iso(e.occurred_at),
        e.reason,
    )
    docs.put(EXERCISE, key, e.centre_id, exercise)
