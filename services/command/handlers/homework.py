"""Homework: catalogue exercises set for a student, due at a time, marked by a tutor."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from services.command.commands.homework import (
    AssignHomework,
    GradeHomework,
    StartHomework,
    SubmitHomework,
)
from services.command.domain.aggregate import InvalidValue, NotFound
from services.command.domain.exercise import Exercise
from services.command.domain.homework import Homework
from services.command.domain.session import Session
from services.command.handlers.common import student, tutor
from services.command.responses import HomeworkView
from services.command.unit_of_work import UnitOfWork
from shared.tenancy import Forbidden


def assign_homework(command: AssignHomework, uow: UnitOfWork) -> HomeworkView:
    """Homework is marked by ``teacher_id``: by default the session's tutor, else whoever sets
    it."""
    actor = uow.actor
    student(uow, command.student_id, field="student_id", refusal="homework is set for a STUDENT")
    marker = command.teacher_id
    if command.session_id is not None:
        session = uow.find(Session, command.session_id, field="session_id")
        if not session.is_enrolled(command.student_id):
            raise InvalidValue("the student was not enrolled in that session", field="session_id")
        marker = marker or session.tutor_id
    marker = marker or actor.user_id
    if actor.is_teacher_other_than(marker):
        raise Forbidden("a TEACHER sets homework that they mark themselves")
    tutor(uow, marker)
    exercises = [uow.find(Exercise, i, field="exercise_ids") for i in command.exercise_ids]
    homework = Homework.assign(
        uuid4(),
        actor.centre_id,
        command.student_id,
        by=actor,
        teacher_id=marker,
        title=command.title,
        exercises=exercises,
        due_at=command.due_at,
        session_id=command.session_id,
        notes=command.notes,
    )
    uow.add(homework)
    return HomeworkView.of(homework)


def _students_own(
    uow: UnitOfWork, homework_id: UUID, act: Callable[[Homework], None]
) -> HomeworkView:
    homework = uow.find(Homework, homework_id)
    if homework.student_id != uow.actor.user_id:
        raise NotFound("no such homework")
    act(homework)
    return HomeworkView.of(homework)


def start_homework(command: StartHomework, uow: UnitOfWork) -> HomeworkView:
    return _students_own(uow, command.homework_id, lambda h: h.start(by=uow.actor))


def submit_homework(command: SubmitHomework, uow: UnitOfWork) -> HomeworkView:
    def submit(homework: Homework) -> None:
        exercises = {i: uow.get(Exercise, i) for i in homework.exercise_ids}
        homework.submit(exercises, command.answers, by=uow.actor)

    return _students_own(uow, command.homework_id, submit)


def grade_homework(command: GradeHomework, uow: UnitOfWork) -> HomeworkView:
    homework = uow.find(Homework, command.homework_id)
    if uow.actor.is_teacher_other_than(homework.teacher_id):
        raise Forbidden("a TEACHER grades only the homework they mark")
    homework.grade(by=uow.actor, score=command.score, feedback=command.feedback)
    return HomeworkView.of(homework)
