"""Marking from an answer key, XP bands, and the life cycle of work and homework."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
)
from services.command.domain.exercise import Exercise, xp_for
from services.command.domain.homework import Homework
from services.command.domain.seat import Seat
from shared.events import (
    UNFINISHED_WORK,
    Difficulty,
    Event,
    ExerciseType,
    HomeworkStatus,
    HomeworkSubmitted,
    Question,
    WorkStatus,
)
from tests.unit.test_seat import live_session_with, student
from tests.unit.test_session import TUTOR


def exercise(kind: ExerciseType, *questions: Question) -> Exercise:
    published = Exercise.publish(
        uuid4(),
        "alpha",
        by=TUTOR,
        title="Check",
        course_id="maths",
        exercise_type=kind,
        difficulty=Difficulty.EASY,
        questions=questions,
    )
    published.collect_events()
    return published


def test_each_type_is_marked_the_way_a_tutor_would() -> None:
    numbers = exercise(
        ExerciseType.NUMERICAL,
        Question(question_id="a", prompt="1/3", accepted_answers=("0.333",)),
        Question(
            question_id="b", prompt="pi", points=2, accepted_answers=("3.14159",), tolerance=0.001
        ),
    )
    assert numbers.mark({"a": "0.34", "b": "3.1416"}).score == 3.0  # both within their tolerance
    assert numbers.mark({"a": "0.35", "b": "3.143"}).score == 0.0  # 0.017 and 0.0014 out
    assert numbers.mark({"a": " 0.333 ", "b": "three"}).score == 1.0
    assert numbers.mark({"a": "nan", "b": "inf"}).score == 0.0
    thousands = exercise(
        ExerciseType.NUMERICAL,
        Question(question_id="a", prompt="10 x 100", accepted_answers=("1,000",)),
        Question(question_id="b", prompt="7 / 2", accepted_answers=("3.5",)),
    )
    assert (
        thousands.mark({"a": "1000", "b": "3,5"}).score == 2.0
    )  # a decimal comma is a decimal point
    assert thousands.mark({"a": "1,000", "b": "35"}).score == 1.0
    words = exercise(
        ExerciseType.FILL_IN_BLANK,
        Question(question_id="a", prompt="Capital of France", accepted_answers=("Paris",)),
    )
    assert words.mark({"a": "  paris "}).score == 1.0
    choice = exercise(
        ExerciseType.MULTIPLE_CHOICE,
        Question(question_id="a", prompt="2+2", options=("3", "4"), accepted_answers=("4",)),
    )
    assert choice.mark({"a": "3"}).score == 0.0 and choice.mark({}).score == 0.0
    essay = exercise(ExerciseType.SHORT_ANSWER, Question(question_id="a", prompt="Why?", points=3))
    assert (essay.auto_gradable, essay.mark({"a": "because"}).score, essay.max_score) == (
        False,
        None,
        3,
    )
    unkeyed_choice = exercise(
        ExerciseType.MULTIPLE_CHOICE, Question(question_id="a", prompt="Pick", options=("x", "y"))
    )
    assert not unkeyed_choice.auto_gradable


@given(st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=12))
def test_the_score_counts_exactly_the_points_of_right_answers(
    questions: list[tuple[int, bool]],
) -> None:
    quiz = exercise(
        ExerciseType.MULTIPLE_CHOICE,
        *(
            Question(
                question_id=f"q{i}",
                prompt="?",
                points=points,
                options=("yes", "no"),
                accepted_answers=("yes",),
            )
            for i, (points, _) in enumerate(questions)
        ),
    )
    answers = {f"q{i}": "yes" if right else "no" for i, (_, right) in enumerate(questions)}
    marking = quiz.mark(answers)
    assert marking.score == sum(points for points, right in questions if right)
    assert 0 <= (marking.score or 0) <= marking.max_score == sum(p for p, _ in questions)


@given(st.integers(0, 100), st.integers(1, 100))
def test_xp_grows_with_the_share_of_the_marks(score: int, max_score: int) -> None:
    score = min(score, max_score)
    earned = xp_for(score, max_score)
    assert earned in (0, 15, 30, 50)
    assert earned <= xp_for(max_score, max_score) == 50
    assert (earned == 0) == (100 * score / max_score < 50)


def test_the_bands_are_exact_at_their_edges() -> None:
    assert (xp_for(18.9, 21), xp_for(18.9, 27), xp_for(12.5, 25), xp_for(12.49, 25)) == (
        50,
        30,
        15,
        0,
    )


def test_bad_answer_keys_are_refused_naming_the_question() -> None:
    with pytest.raises(InvalidValue) as error:
        exercise(
            ExerciseType.MULTIPLE_CHOICE,
            Question(question_id="a", prompt="?", options=("x", "y"), accepted_answers=("z",)),
        )
    assert error.value.field == "questions[0].accepted_answers"
    with pytest.raises(InvalidValue) as error:
        exercise(
            ExerciseType.FILL_IN_BLANK,
            Question(question_id="a", prompt="?", accepted_answers=("x",), tolerance=0.1),
        )
    assert error.value.field == "questions[0].tolerance"
    with pytest.raises(InvalidValue) as error:
        exercise(
            ExerciseType.FILL_IN_BLANK,
            Question(question_id="a", prompt="?", accepted_answers=(" ",)),
        )
    assert error.value.field == "questions[0].accepted_answers"


class ExerciseWorkMachine(RuleBasedStateMachine):
    """The tutor sets work, the student does it or not, the tutor marks it: whatever the order of
    attempts, the seat only moves along ASSIGNED → IN_PROGRESS → SUBMITTED/AUTO_GRADED → GRADED,
    refused verbs record nothing, and replaying the events gives the same seat."""

    def __init__(self) -> None:
        super().__init__()
        self.ann = student()
        self.session = live_session_with(self.ann)
        self.seat = Seat.of(self.session, self.ann.user_id)
        self.keyed = exercise(
            ExerciseType.MULTIPLE_CHOICE,
            Question(question_id="a", prompt="?", options=("x", "y"), accepted_answers=("x",)),
        )
        self.essay = exercise(
            ExerciseType.LONG_ANSWER, Question(question_id="a", prompt="Why?", points=4)
        )
        self.history: list[Event] = []
        self.model: dict[UUID, WorkStatus] = {}

    def _attempt(self, act: Callable[[], object]) -> None:
        before = self.seat.version
        try:
            act()
        except (InvalidTransition, RuleViolated, InvalidValue):
            assert self.seat.version == before and not self.seat.has_changes
        self.history.extend(self.seat.collect_events())

    @rule(keyed=st.booleans())
    def assign(self, keyed: bool) -> None:
        chosen = self.keyed if keyed else self.essay
        busy = any(
            self.seat.work[i].exercise_id == chosen.id and s in UNFINISHED_WORK
            for i, s in self.model.items()
        )
        count = len(self.seat.work)
        self._attempt(lambda: self.seat.assign_exercise(self.session, chosen, by=TUTOR))
        if busy:
            assert len(self.seat.work) == count
        else:
            (new,) = set(self.seat.work) - set(self.model)
            self.model[new] = WorkStatus.ASSIGNED

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        if not self.model:
            return
        work_id = data.draw(st.sampled_from(list(self.model)))
        self._attempt(lambda: self.seat.start_exercise(self.session, work_id, by=self.ann))
        if self.model[work_id] is WorkStatus.ASSIGNED:
            self.model[work_id] = WorkStatus.IN_PROGRESS

    @rule(data=st.data(), percent=st.integers(-5, 105))
    def progress(self, data: st.DataObject, percent: int) -> None:
        if not self.model:
            return
        work_id = data.draw(st.sampled_from(list(self.model)))
        self._attempt(
            lambda: self.seat.report_progress(self.session, work_id, percent, by=self.ann)
        )

    @rule(data=st.data(), answer=st.sampled_from(["x", "y", ""]))
    def submit(self, data: st.DataObject, answer: str) -> None:
        if not self.model:
            return
        work_id = data.draw(st.sampled_from(list(self.model)))
        work = self.seat.work[work_id]
        chosen = self.keyed if work.exercise_id == self.keyed.id else self.essay
        self._attempt(
            lambda: self.seat.submit_exercise(
                self.session, work_id, chosen, {"a": answer}, by=self.ann
            )
        )
        if self.model[work_id] is WorkStatus.IN_PROGRESS:
            self.model[work_id] = (
                WorkStatus.AUTO_GRADED if chosen is self.keyed else WorkStatus.SUBMITTED
            )

    @rule(data=st.data(), score=st.floats(-1, 6))
    def grade(self, data: st.DataObject, score: float) -> None:
        if not self.model:
            return
        work_id = data.draw(st.sampled_from(list(self.model)))
        self._attempt(
            lambda: self.seat.grade_exercise(work_id, by=TUTOR, score=score, feedback=None)
        )
        if (
            self.model[work_id] is WorkStatus.SUBMITTED
            and 0 <= score <= self.seat.work[work_id].max_score
        ):
            self.model[work_id] = WorkStatus.GRADED

    @invariant()
    def statuses_follow_the_model(self) -> None:
        assert {i: w.status for i, w in self.seat.work.items()} == self.model
        for work in self.seat.work.values():
            assert 0 <= work.progress <= 100
            assert (work.score is None) == (
                work.status in (WorkStatus.ASSIGNED, WorkStatus.IN_PROGRESS, WorkStatus.SUBMITTED)
            )

    @invariant()
    def replaying_the_events_gives_the_same_seat(self) -> None:
        replayed = Seat.project(None, self.history)
        if replayed is None:
            assert not self.history
            return
        assert isinstance(replayed, Aggregate)
        assert {i: (w.status, w.progress, w.score) for i, w in replayed.work.items()} == {
            i: (w.status, w.progress, w.score) for i, w in self.seat.work.items()
        }


TestExerciseWork = ExerciseWorkMachine.TestCase
TestExerciseWork.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_homework_is_handed_in_once_by_its_student_and_marked() -> None:
    ann, ben = student(), student()
    keyed = exercise(
        ExerciseType.FILL_IN_BLANK,
        Question(question_id="a", prompt="Sky?", accepted_answers=("blue",)),
    )
    essay = exercise(ExerciseType.LONG_ANSWER, Question(question_id="a", prompt="Why?", points=4))
    with pytest.raises(InvalidValue) as error:
        Homework.assign(
            uuid4(),
            "alpha",
            ann.user_id,
            by=TUTOR,
            teacher_id=TUTOR.user_id,
            title="Sky",
            exercises=[keyed],
            due_at=datetime.now(UTC) - timedelta(minutes=1),
        )
    assert error.value.field == "due_at"
    homework = Homework.assign(
        uuid4(),
        "alpha",
        ann.user_id,
        by=TUTOR,
        teacher_id=TUTOR.user_id,
        title="Sky",
        exercises=[keyed, essay],
        due_at=datetime.now(UTC) + timedelta(days=1),
    )
    with pytest.raises(RuleViolated):
        homework.start(by=ben)
    with pytest.raises(InvalidTransition):
        homework.grade(by=TUTOR, score=1, feedback=None)
    homework.submit({keyed.id: keyed, essay.id: essay}, {keyed.id: {"a": "Blue"}}, by=ann)
    assert homework.status is HomeworkStatus.SUBMITTED and homework.max_score == 5
    with pytest.raises(InvalidTransition):
        homework.submit({keyed.id: keyed, essay.id: essay}, {}, by=ann)
    with pytest.raises(InvalidValue):
        homework.grade(by=TUTOR, score=6, feedback=None)
    homework.grade(by=TUTOR, score=4.5, feedback="Good")
    events = homework.collect_events()
    assert [e.type_name for e in events] == [
        "HomeworkAssigned",
        "HomeworkSubmitted",
        "HomeworkGraded",
    ]
    submitted = events[1]
    assert isinstance(submitted, HomeworkSubmitted)
    assert submitted.xp_awarded == 20 and submitted.on_time
    replayed = Homework.project(None, events)
    assert replayed is not None and replayed.status is HomeworkStatus.GRADED
