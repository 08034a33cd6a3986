"""Homework: exercises set for a student to do at home by a due time, marked by their tutor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
    applies,
)
from services.command.domain.exercise import Exercise, check_grade
from shared.events import (
    OPEN_HOMEWORK,
    HomeworkAssigned,
    HomeworkBecameOverdue,
    HomeworkDueReminderSent,
    HomeworkGraded,
    HomeworkStarted,
    HomeworkStatus,
    HomeworkSubmitted,
)
from shared.tenancy import Actor

MAX_EXERCISES = 20
MAX_TEXT = 2000
XP_ON_TIME, XP_LATE = 20, 10
HANDED_IN = frozenset({HomeworkStatus.SUBMITTED, HomeworkStatus.AUTO_GRADED})


class Homework(Aggregate):
    student_id: UUID
    teacher_id: UUID
    title: str
    session_id: UUID | None
    exercise_ids: tuple[UUID, ...]
    max_score: int
    due_at: datetime
    status: HomeworkStatus

    @classmethod
    def assign(
        cls,
        homework_id: UUID,
        centre_id: str,
        student_id: UUID,
        *,
        by: Actor,
        teacher_id: UUID,
        title: str,
        exercises: Sequence[Exercise],
        due_at: datetime,
        session_id: UUID | None = None,
        notes: str | None = None,
    ) -> Homework:
        title = values.text(title, "title", values.TITLE, what="homework's title")
        if not 1 <= len(exercises) <= MAX_EXERCISES:
            raise InvalidValue(f"homework has 1 to {MAX_EXERCISES} exercises", field="exercise_ids")
        if len({e.id for e in exercises}) != len(exercises):
            raise InvalidValue("an exercise appears twice", field="exercise_ids")
        if any(e.retired for e in exercises):
            raise InvalidValue("a retired exercise cannot be set as homework", field="exercise_ids")
        values.moment(due_at, "due_at")
        if due_at <= datetime.now(UTC):
            raise InvalidValue("the due time must be in the future", field="due_at")
        notes = values.free_text(notes, "notes", MAX_TEXT)
        homework = cls(homework_id, centre_id)
        homework._record(
            HomeworkAssigned,
            by,
            student_id=student_id,
            teacher_id=teacher_id,
            title=title,
            exercise_ids=tuple(e.id for e in exercises),
            max_score=sum(e.max_score for e in exercises),
            due_at=due_at,
            session_id=session_id,
            notes=notes,
        )
        return homework

    def start(self, *, by: Actor) -> None:
        self._by_the_student(by, "start")
        if self.status is not HomeworkStatus.NOT_STARTED:
            raise InvalidTransition(f"cannot start homework that is {self.status}")
        self._record(HomeworkStarted, by, student_id=self.student_id)

    def submit(
        self,
        exercises: Mapping[UUID, Exercise],
        answers: Mapping[UUID, dict[str, str]],
        *,
        by: Actor,
    ) -> None:
        """Hand in answers to each exercise; marked at once when every exercise has a key."""
        self._by_the_student(by, "hand in")
        if self.status not in (HomeworkStatus.NOT_STARTED, HomeworkStatus.IN_PROGRESS):
            raise InvalidTransition(f"cannot hand in homework that is {self.status}")
        values.at_most(answers, "answers", len(self.exercise_ids), "exercises")
        unknown = [str(i) for i in answers if i not in self.exercise_ids]
        if unknown:
            raise InvalidValue(
                f"exercise {unknown[0]} is not part of this homework", field="answers"
            )
        for exercise_id, given in answers.items():
            exercises[exercise_id].check_answers(given, field=f"answers.{exercise_id}")
        markings = [exercises[i].mark(answers.get(i, {})) for i in self.exercise_ids]
        auto_score = (
            None if any(m.score is None for m in markings) else sum(m.score or 0 for m in markings)
        )
        on_time = datetime.now(UTC) <= self.due_at
        self._record(
            HomeworkSubmitted,
            by,
            student_id=self.student_id,
            teacher_id=self.teacher_id,
            answers={str(i): dict(a) for i, a in answers.items()},
            on_time=on_time,
            status=HomeworkStatus.SUBMITTED if auto_score is None else HomeworkStatus.AUTO_GRADED,
            max_score=self.max_score,
            auto_score=auto_score,
            xp_awarded=XP_ON_TIME if on_time else XP_LATE,
        )

    def hand_in_on_paper(self, upload_id: UUID, *, by: Actor) -> bool:
        """The homework came back on paper: it waits for its teacher to mark it. ``False``
        when it was already handed in."""
        if self.status not in (HomeworkStatus.NOT_STARTED, HomeworkStatus.IN_PROGRESS):
            return False
        on_time = datetime.now(UTC) <= self.due_at
        self._record(
            HomeworkSubmitted,
            by,
            student_id=self.student_id,
            teacher_id=self.teacher_id,
            answers={},
            on_time=on_time,
            status=HomeworkStatus.SUBMITTED,
            max_score=self.max_score,
            xp_awarded=XP_ON_TIME if on_time else XP_LATE,
            paper_upload_id=upload_id,
        )
        return True

    def grade(self, *, by: Actor, score: float, feedback: str | None) -> None:
        if self.status not in HANDED_IN:
            raise InvalidTransition(f"only handed-in homework is graded, not {self.status}")
        check_grade(score, self.max_score, feedback)
        self._record(
            HomeworkGraded,
            by,
            student_id=self.student_id,
            teacher_id=self.teacher_id,
            score=score,
            max_score=self.max_score,
            feedback=feedback,
        )

    # --- what timers do (recorded by SYSTEM) ----------------------------------------------

    def remind(self, *, by: Actor, due_at: datetime) -> bool:
        """The homework is due soon and not handed in: the student and their parents are
        reminded. ``False`` when it no longer applies (handed in, reminded already)."""
        if not self._open_and_due_at(due_at) or self.reminded:
            return False
        self._record(HomeworkDueReminderSent, by, **self._timer_fields())
        return True

    def become_overdue(self, *, by: Actor, due_at: datetime) -> bool:
        """The due time passed before it was handed in; ``False`` when it no longer applies
        (handed in, overdue already)."""
        if not self._open_and_due_at(due_at) or self.overdue:
            return False
        self._record(HomeworkBecameOverdue, by, **self._timer_fields())
        return True

    def _open_and_due_at(self, due_at: datetime) -> bool:
        return self.status in OPEN_HOMEWORK and due_at == self.due_at

    def _timer_fields(self) -> dict[str, Any]:
        return {"homework_id": self.id, "student_id": self.student_id, "due_at": self.due_at}

    def _by_the_student(self, by: Actor, verb: str) -> None:
        if by.user_id != self.student_id:
            raise RuleViolated(f"only the student the homework is for can {verb} it")

    def _blank(self) -> None:
        self.status = HomeworkStatus.NOT_STARTED
        self.reminded = False
        self.overdue = False

    @applies(HomeworkAssigned)
    def _assigned(self, event: HomeworkAssigned) -> None:
        self.student_id, self.teacher_id = event.student_id, event.teacher_id
        self.title, self.session_id = event.title, event.session_id
        self.exercise_ids, self.max_score, self.due_at = (
            event.exercise_ids,
            event.max_score,
            event.due_at,
        )

    @applies(HomeworkDueReminderSent)
    def _reminded(self, event: HomeworkDueReminderSent) -> None:
        self.reminded = True

    @applies(HomeworkBecameOverdue)
    def _became_overdue(self, event: HomeworkBecameOverdue) -> None:
        self.overdue = True

    @applies(HomeworkStarted)
    def _started(self, event: HomeworkStarted) -> None:
        self.status = HomeworkStatus.IN_PROGRESS

    @applies(HomeworkSubmitted)
    def _submitted(self, event: HomeworkSubmitted) -> None:
        self.status = event.status

    @applies(HomeworkGraded)
    def _graded(self, event: HomeworkGraded) -> None:
        self.status = HomeworkStatus.GRADED
