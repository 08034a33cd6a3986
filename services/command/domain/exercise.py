"""An exercise of the centre's catalogue, and how answers to it are marked."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from services.command.domain import values
from services.command.domain.aggregate import Aggregate, InvalidTransition, InvalidValue, applies
from shared.events import (
    EXERCISE_TIME_LIMIT_MINUTES,
    Difficulty,
    ExercisePublished,
    ExerciseRetired,
    ExerciseType,
    Question,
)
from shared.events.exercises import is_auto_gradable, max_score_of
from shared.tenancy import Actor

MAX_QUESTIONS = 100
MAX_ANSWER_LENGTH = 5000
MAX_QUESTION_ID, MAX_PROMPT, MAX_OPTION = 40, 2000, 500
MAX_OPTIONS = 26
"""Options of a question, and accepted answers: at most one per letter of the alphabet."""
MAX_POINTS = 100
"""Minutes."""
DEFAULT_TOLERANCE = 0.01
"""How far a NUMERICAL answer may be from the key and still be right, unless the question says."""

XP_BANDS = ((90, 50), (70, 30), (50, 15))
"""(at least this percentage, XP earned) for a marked exercise, best band first."""


def xp_for(score: float, max_score: int) -> int:
    """Exact at the band edges: 18.9 of 21 is 90 %, though not in binary floating point."""
    if max_score <= 0:
        return 0
    share = Decimal(str(score)) * 100
    return next((xp for floor, xp in XP_BANDS if share >= floor * max_score), 0)


MAX_FEEDBACK = 2000


def check_grade(score: float, max_score: int, feedback: str | None) -> None:
    """A tutor's grade: a score within the marks available, and feedback of a sensible length."""
    values.finite(score, "score", 0, max_score)
    values.free_text(feedback, "feedback", MAX_FEEDBACK)


@dataclass(frozen=True)
class Marking:
    """The mark of a set of answers; ``score`` is ``None`` when a tutor has to mark them."""

    score: float | None
    max_score: int


class Exercise(Aggregate):
    title: str
    course_id: str
    exercise_type: ExerciseType
    difficulty: Difficulty
    questions: tuple[Question, ...]
    instructions: str | None
    retired: bool

    @classmethod
    def publish(
        cls,
        exercise_id: UUID,
        centre_id: str,
        *,
        by: Actor,
        title: str,
        course_id: str,
        exercise_type: ExerciseType,
        difficulty: Difficulty,
        questions: Sequence[Question],
        instructions: str | None = None,
        time_limit_minutes: int | None = None,
    ) -> Exercise:
        title = values.text(title, "title", values.TITLE, what="exercise's title")
        course_id = values.text(course_id, "course_id", values.REF, what="course id")
        instructions = values.free_text(instructions, "instructions", values.NOTE)
        if time_limit_minutes is not None:
            values.whole(
                time_limit_minutes,
                "time_limit_minutes",
                *EXERCISE_TIME_LIMIT_MINUTES,
                unit=" minutes",
            )
        if not 1 <= len(questions) <= MAX_QUESTIONS:
            raise InvalidValue(f"an exercise has 1 to {MAX_QUESTIONS} questions", field="questions")
        seen: set[str] = set()
        for index, question in enumerate(questions):
            field = f"questions[{index}]"
            _check_question(question, field)
            if question.question_id in seen:
                raise InvalidValue("question ids must be unique", field=f"{field}.question_id")
            seen.add(question.question_id)
            _check_key(exercise_type, question, field)
        exercise = cls(exercise_id, centre_id)
        exercise._record(
            ExercisePublished,
            by,
            title=title,
            course_id=course_id,
            exercise_type=exercise_type,
            difficulty=difficulty,
            questions=tuple(questions),
            instructions=instructions,
            time_limit_minutes=time_limit_minutes,
        )
        return exercise

    def retire(self, *, by: Actor, reason: str) -> None:
        if self.retired:
            raise InvalidTransition("the exercise is already retired")
        self._record(ExerciseRetired, by, reason=values.reason(reason))

    @property
    def max_score(self) -> int:
        return max_score_of(self.questions)

    @property
    def auto_gradable(self) -> bool:
        return is_auto_gradable(self.exercise_type, self.questions)

    def check_answers(self, answers: Mapping[str, str], *, field: str = "answers") -> None:
        known = {q.question_id for q in self.questions}
        for question_id, answer in answers.items():
            if question_id not in known:
                raise InvalidValue(
                    "no such question in this exercise", field=f"{field}.{question_id}"
                )
            values.free_text(answer, f"{field}.{question_id}", MAX_ANSWER_LENGTH)

    def mark(self, answers: Mapping[str, str]) -> Marking:
        """Mark the answers from the key; a missing answer scores nothing."""
        if not self.auto_gradable:
            return Marking(None, self.max_score)
        score = sum(
            q.points
            for q in self.questions
            if q.question_id in answers and self._is_right(q, answers[q.question_id])
        )
        return Marking(float(score), self.max_score)

    def _is_right(self, question: Question, answer: str) -> bool:
        given = answer.strip()
        if self.exercise_type is ExerciseType.NUMERICAL:
            value = _number(given)
            tolerance = DEFAULT_TOLERANCE if question.tolerance is None else question.tolerance
            return value is not None and any(
                abs(value - (_number(key) or 0.0)) <= tolerance for key in question.accepted_answers
            )
        if self.exercise_type is ExerciseType.FILL_IN_BLANK:
            return given.casefold() in {key.strip().casefold() for key in question.accepted_answers}
        return given in {key.strip() for key in question.accepted_answers}

    def _blank(self) -> None:
        self.retired = False

    @applies(ExercisePublished)
    def _published(self, event: ExercisePublished) -> None:
        self.title = event.title
        self.course_id = event.course_id
        self.exercise_type = event.exercise_type
        self.difficulty = event.difficulty
        self.questions = event.questions
        self.instructions = event.instructions

    @applies(ExerciseRetired)
    def _retired(self, event: ExerciseRetired) -> None:
        self.retired = True


_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def _number(text: str) -> float | None:
    """A number as people write it: ``1,000`` (thousands) and ``3,5`` (a decimal comma) too."""
    text = text.strip()
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_question(question: Question, field: str) -> None:
    """Every text of a question within its bounds (the wire type checks them too, but a
    question can be built in code)."""
    values.text(question.question_id, f"{field}.question_id", MAX_QUESTION_ID, what="question id")
    values.text(question.prompt, f"{field}.prompt", MAX_PROMPT, lines=True, what="prompt")
    values.whole(question.points, f"{field}.points", 1, MAX_POINTS, unit=" points")
    for name, items in (
        ("options", question.options),
        ("accepted_answers", question.accepted_answers),
    ):
        values.at_most(items, f"{field}.{name}", MAX_OPTIONS)
        for item in items:
            values.free_text(item, f"{field}.{name}", MAX_OPTION, lines=False)
    if question.tolerance is not None:
        values.finite(question.tolerance, f"{field}.tolerance", 0, 1e12)


def _check_key(exercise_type: ExerciseType, question: Question, field: str) -> None:
    if any(not key.strip() for key in question.accepted_answers):
        raise InvalidValue("an accepted answer cannot be blank", field=f"{field}.accepted_answers")
    if exercise_type is ExerciseType.MULTIPLE_CHOICE:
        if len(question.options) < 2:
            raise InvalidValue(
                "a multiple-choice question has at least two options", field=f"{field}.options"
            )
        unknown = [a for a in question.accepted_answers if a not in question.options]
        if unknown:
            raise InvalidValue(
                "the accepted answers must be among the options", field=f"{field}.accepted_answers"
            )
    if exercise_type is ExerciseType.NUMERICAL and any(
        _number(a) is None for a in question.accepted_answers
    ):
        raise InvalidValue(
            "the accepted answers of a numerical question are numbers",
            field=f"{field}.accepted_answers",
        )
    if question.tolerance is not None and exercise_type is not ExerciseType.NUMERICAL:
        raise InvalidValue("only numerical questions have a tolerance", field=f"{field}.tolerance")
