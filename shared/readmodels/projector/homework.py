"""The ``homework`` document, and what the student's and the marking tutor's documents hold
about it, recomputed from it (all events of one aggregate, so always in order)."""

from __future__ import annotations

from msgspec import UNSET

from shared import events as ev
from shared.readmodels.documents import HOMEWORK, Homework, HomeworkSummary
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.projector.student import put_student, student_doc
from shared.readmodels.projector.tutor import homework_to_mark
from shared.readmodels.times import iso


def _summary(homework: Homework) -> HomeworkSummary:
    return HomeworkSummary(
        homework_id=homework.homework_id,
        student_id=homework.student_id,
        teacher_id=homework.teacher_id,
        title=homework.title,
        status=homework.status,
        due_at=homework.due_at,
        max_score=homework.max_score,
        session_id=homework.session_id,
        assigned_at=homework.assigned_at,
        submitted_at=homework.submitted_at,
        on_time=homework.on_time,
        auto_score=homework.auto_score,
        score=homework.score,
        feedback=homework.feedback,
        graded_at=homework.graded_at,
        xp_awarded=homework.xp_awarded,
        reminded_at=homework.reminded_at,
        overdue_at=homework.overdue_at,
        paper_upload_id=homework.paper_upload_id,
    )


def _assigned(e: ev.HomeworkAssigned) -> Homework:
    return Homework(
        homework_id=str(e.aggregate_id),
        student_id=str(e.student_id),
        teacher_id=str(e.teacher_id),
        title=e.title,
        exercise_ids=[str(i) for i in e.exercise_ids],
        max_score=e.max_score,
        due_at=iso(e.due_at),
        session_id=str(e.session_id) if e.session_id else None,
        notes=e.notes,
        status=ev.HomeworkStatus.NOT_STARTED,
        assigned_at=iso(e.occurred_at),
        assigned_by=str(e.actor_id),
    )


HomeworkChanged = (
    ev.HomeworkAssigned
    | ev.HomeworkStarted
    | ev.HomeworkSubmitted
    | ev.HomeworkGraded
    | ev.HomeworkDueReminderSent
    | ev.HomeworkBecameOverdue
)


@projects(
    ev.HomeworkAssigned,
    ev.HomeworkStarted,
    ev.HomeworkSubmitted,
    ev.HomeworkGraded,
    ev.HomeworkDueReminderSent,
    ev.HomeworkBecameOverdue,
)
def homework_changed(docs: Batch, e: HomeworkChanged) -> None:
    key = str(e.aggregate_id)
    before: ev.HomeworkStatus | None = None
    if isinstance(e, ev.HomeworkAssigned):
        homework = _assigned(e)
    else:
        found = docs.get(HOMEWORK, key)
        assert found is not None  # assigned first: same aggregate, applied in order
        homework, before = found, found.status
    at = iso(e.occurred_at)
    if isinstance(e, ev.HomeworkStarted):
        homework.status, homework.started_at = ev.HomeworkStatus.IN_PROGRESS, at
    elif isinstance(e, ev.HomeworkSubmitted):
        homework.status, homework.submitted_at, homework.on_time = e.status, at, e.on_time
        homework.answers = {exercise: dict(answers) for exercise, answers in e.answers.items()}
        homework.auto_score = homework.score = e.auto_score
        homework.xp_awarded = e.xp_awarded
        if e.paper_upload_id is not None:
            homework.paper_upload_id = str(e.paper_upload_id)
    elif isinstance(e, ev.HomeworkGraded):
        homework.status, homework.score, homework.feedback = (
            ev.HomeworkStatus.GRADED,
            e.score,
            e.feedback,
        )
        homework.graded_at, homework.graded_by = at, str(e.actor_id)
    elif isinstance(e, ev.HomeworkDueReminderSent):
        homework.reminded_at = at
    elif isinstance(e, ev.HomeworkBecameOverdue) and homework.status in ev.OPEN_HOMEWORK:
        homework.overdue_at = at  # not handed in since: owed past its due time
    docs.put(HOMEWORK, key, e.centre_id, homework)
    summary = _summary(homework)
    student = student_doc(docs, e.centre_id, homework.student_id)
    student.homework[key] = summary
    if isinstance(e, ev.HomeworkBecameOverdue) and homework.overdue_at:
        # The student owes it past its due time (an input of their risk score) until it is
        # handed in.
        student.overdue_homework = {**(student.overdue_homework or {}), key: at}
    if isinstance(e, ev.HomeworkSubmitted | ev.HomeworkGraded) and student.overdue_homework:
        student.overdue_homework.pop(key, None)  # handed in: no longer owed
        student.overdue_homework = student.overdue_homework or UNSET
    put_student(docs, student)
    homework_to_mark(docs, e.centre_id, summary, before)
