from __future__ import annotations

from typing import TypedDict
from uuid import UUID, uuid4

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.command.domain.academic import (
    AcademicProfile,
    AssignmentNotFound,
    academic_profile_id,
)
from services.command.domain.aggregate import InvalidTransition, InvalidValue, RuleViolated
from shared.events import (
    ContentAssigned,
    ContentAssignmentWithdrawn,
    Event,
    LevelChangeType,
    SubjectAssessed,
    WorkingLevelChanged,
)
from shared.tenancy import Actor, Role

TUTOR = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")
MATHS = "algebra-fundamentals"


def profile() -> AcademicProfile:
    return AcademicProfile.of(uuid4(), "alpha")


def assessed(school_grade: int = 5, working_level: int = 3) -> AcademicProfile:
    academic = profile()
    academic.assess(MATHS, by=TUTOR, school_grade=school_grade, working_level=working_level)
    academic.collect_events()
    return academic


def test_the_profile_id_is_derived_from_the_student() -> None:
    student = uuid4()
    assert AcademicProfile.of(student, "alpha").id == academic_profile_id(student)
    assert academic_profile_id(uuid4()) != academic_profile_id(student)


def test_an_assessment_records_grade_and_level_and_a_reassessment_the_level_it_replaced() -> None:
    academic = profile()
    academic.assess(
        f"  {MATHS} ", by=TUTOR, school_grade=5, working_level=3, notes="  shaky on fractions "
    )
    academic.assess(MATHS, by=TUTOR, school_grade=6, working_level=4, notes="   ")
    first, second = academic.collect_events()
    assert isinstance(first, SubjectAssessed) and isinstance(second, SubjectAssessed)
    assert (first.course_id, first.school_grade, first.working_level) == (MATHS, 5, 3)
    assert (first.previous_working_level, first.notes) == (None, "shaky on fractions")
    assert (second.previous_working_level, second.working_level, second.notes) == (3, 4, None)
    assert (academic.subjects[MATHS].school_grade, academic.subjects[MATHS].working_level) == (6, 4)


@pytest.mark.parametrize(
    ("grade", "level", "field"),
    [
        (-1, 3, "school_grade"),
        (13, 3, "school_grade"),
        (5, -1, "working_level"),
        (5, 13, "working_level"),
        (True, 3, "school_grade"),
    ],
)
def test_grades_and_levels_run_from_kindergarten_to_year_12(
    grade: int, level: int, field: str
) -> None:
    academic = profile()
    with pytest.raises(InvalidValue) as error:
        academic.assess(MATHS, by=TUTOR, school_grade=grade, working_level=level)
    assert error.value.field == field and not academic.has_changes


def test_an_assessment_needs_a_course_and_short_notes() -> None:
    with pytest.raises(InvalidValue) as error:
        profile().assess(" ", by=TUTOR, school_grade=5, working_level=3)
    assert error.value.field == "course_id"
    with pytest.raises(InvalidValue) as error:
        profile().assess(MATHS, by=TUTOR, school_grade=5, working_level=3, notes="x" * 2001)
    assert error.value.field == "notes"


def test_a_level_change_keeps_the_previous_level_the_type_and_the_reason() -> None:
    academic = assessed()
    academic.change_working_level(
        MATHS,
        by=TUTOR,
        level=4,
        change_type=LevelChangeType.LEVEL_ADVANCEMENT,
        reason=" Mastered ratios ",
    )
    (event,) = academic.collect_events()
    assert isinstance(event, WorkingLevelChanged)
    assert (event.previous_level, event.new_level, event.change_type, event.reason) == (
        3,
        4,
        LevelChangeType.LEVEL_ADVANCEMENT,
        "Mastered ratios",
    )
    assert academic.subjects[MATHS].working_level == 4


def test_level_changes_that_the_centre_does_not_allow() -> None:
    academic = assessed(working_level=3)
    change = academic.change_working_level
    with pytest.raises(InvalidTransition, match="assess"):
        change(
            "reading", by=TUTOR, level=4, change_type=LevelChangeType.TUTOR_OVERRIDE, reason="why"
        )
    with pytest.raises(RuleViolated, match="already"):
        change(MATHS, by=TUTOR, level=3, change_type=LevelChangeType.TUTOR_OVERRIDE, reason="why")
    for level, change_type, reason, field in [
        (4, LevelChangeType.TUTOR_OVERRIDE, "  ", "reason"),
        (4, LevelChangeType.TUTOR_OVERRIDE, "x" * 2001, "reason"),
        (4, LevelChangeType.ASSESSMENT_RESULT, "why", "change_type"),
        (2, LevelChangeType.LEVEL_ADVANCEMENT, "why", "change_type"),
        (4, LevelChangeType.LEVEL_REGRESSION, "why", "change_type"),
        (13, LevelChangeType.TUTOR_OVERRIDE, "why", "level"),
    ]:
        with pytest.raises(InvalidValue) as error:
            change(MATHS, by=TUTOR, level=level, change_type=change_type, reason=reason)
        assert error.value.field == field
    assert not academic.has_changes and academic.subjects[MATHS].working_level == 3


def test_a_new_assignment_supersedes_the_active_one_of_the_same_course_only() -> None:
    academic = profile()
    first = academic.assign_content(
        MATHS, by=TUTOR, lesson_id="fractions", reason="gap in fractions"
    )
    reading = academic.assign_content(
        "reading", by=TUTOR, exercise_id="inference-2", reason="practice"
    )
    second = academic.assign_content(MATHS, by=TUTOR, exercise_id="ratios-1", reason="moved on")
    events = academic.collect_events()
    assigned = [e for e in events if isinstance(e, ContentAssigned)]
    assert assigned == events
    assert [e.replaces for e in assigned] == [None, None, first]
    assert len({first, reading, second}) == 3
    active_maths, active_reading = (academic.active_assignment(c) for c in (MATHS, "reading"))
    assert active_maths is not None and active_maths.id == second
    assert active_reading is not None and active_reading.id == reading
    assert not academic.assignments[first].active


class Assignment(TypedDict, total=False):
    """What ``AcademicProfile.assign_content`` takes besides the course and the actor."""

    reason: str
    lesson_id: str
    exercise_id: str


def test_an_assignment_names_a_lesson_or_an_exercise_and_gives_a_reason() -> None:
    academic = profile()
    cases: list[tuple[Assignment, str]] = [
        ({"reason": "why"}, "lesson_id"),
        ({"lesson_id": " ", "reason": "why"}, "lesson_id"),
        ({"exercise_id": "x" * 101, "reason": "why"}, "exercise_id"),
        ({"lesson_id": "fractions", "reason": ""}, "reason"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidValue) as error:
            academic.assign_content(MATHS, by=TUTOR, **kwargs)
        assert error.value.field == field
    assert not academic.has_changes


def test_only_an_active_assignment_can_be_withdrawn() -> None:
    academic = profile()
    first = academic.assign_content(MATHS, by=TUTOR, lesson_id="fractions", reason="gap")
    second = academic.assign_content(MATHS, by=TUTOR, lesson_id="ratios", reason="next")
    with pytest.raises(InvalidTransition):
        academic.withdraw_assignment(first, by=TUTOR, reason="superseded already")
    with pytest.raises(InvalidValue):
        academic.withdraw_assignment(second, by=TUTOR, reason=" ")
    with pytest.raises(AssignmentNotFound):
        academic.withdraw_assignment(uuid4(), by=TUTOR, reason="no such")
    academic.withdraw_assignment(second, by=TUTOR, reason="covered in class")
    withdrawn = academic.collect_events()[-1]
    assert isinstance(withdrawn, ContentAssignmentWithdrawn)
    assert (withdrawn.assignment_id, withdrawn.course_id) == (second, MATHS)
    assert withdrawn.reason == "covered in class"
    assert academic.active_assignment(MATHS) is None
    with pytest.raises(InvalidTransition):
        academic.withdraw_assignment(second, by=TUTOR, reason="again")


class AcademicProfileLife(RuleBasedStateMachine):
    """Assessments, level changes, assignments and withdrawals in any order: the profile matches
    a plain model, at most one assignment per course is active, and it rebuilds from history."""

    COURSES = ("maths", "reading")

    def __init__(self) -> None:
        super().__init__()
        self.profile = profile()
        self.levels: dict[str, int] = {}
        self.active: dict[str, UUID] = {}
        self.ended: set[UUID] = set()
        self.history: list[Event] = []

    @rule(course=st.sampled_from(COURSES), grade=st.integers(0, 12), level=st.integers(0, 12))
    def assess(self, course: str, grade: int, level: int) -> None:
        self.profile.assess(course, by=TUTOR, school_grade=grade, working_level=level)
        self.levels[course] = level

    @rule(
        course=st.sampled_from(COURSES),
        level=st.integers(0, 12),
        change_type=st.sampled_from(
            sorted(set(LevelChangeType) - {LevelChangeType.ASSESSMENT_RESULT})
        ),
    )
    def change_level(self, course: str, level: int, change_type: LevelChangeType) -> None:
        def change() -> None:
            self.profile.change_working_level(
                course, by=TUTOR, level=level, change_type=change_type, reason="because"
            )

        current = self.levels.get(course)
        if current is None:
            with pytest.raises(InvalidTransition):
                change()
        elif level == current:
            with pytest.raises(RuleViolated):
                change()
        elif (change_type is LevelChangeType.LEVEL_ADVANCEMENT and level < current) or (
            change_type is LevelChangeType.LEVEL_REGRESSION and level > current
        ):
            with pytest.raises(InvalidValue):
                change()
        else:
            change()
            self.levels[course] = level

    @rule(course=st.sampled_from(COURSES))
    def assign(self, course: str) -> None:
        assignment = self.profile.assign_content(
            course, by=TUTOR, lesson_id="next", reason="chosen"
        )
        if course in self.active:
            self.ended.add(self.active[course])
        self.active[course] = assignment

    @precondition(lambda self: bool(self.active) or bool(self.ended))
    @rule(pick=st.integers(0, 20))
    def withdraw(self, pick: int) -> None:
        known = sorted([*self.active.values(), *self.ended])
        assignment = known[pick % len(known)]
        if assignment in self.ended:
            with pytest.raises(InvalidTransition):
                self.profile.withdraw_assignment(assignment, by=TUTOR, reason="done")
            return
        self.profile.withdraw_assignment(assignment, by=TUTOR, reason="done")
        course = next(c for c, a in self.active.items() if a == assignment)
        del self.active[course]
        self.ended.add(assignment)

    @invariant()
    def matches_the_model_and_rebuilds_from_history(self) -> None:
        self.history += self.profile.collect_events()
        rebuilt = AcademicProfile.project(None, self.history)
        for academic in [self.profile] + ([rebuilt] if rebuilt is not None else []):
            assert {c: s.working_level for c, s in academic.subjects.items()} == self.levels
            assert {
                a.course_id: a.id for a in academic.assignments.values() if a.active
            } == self.active
        assert (rebuilt.version if rebuilt else 0) == self.profile.version


AcademicProfileLife.TestCase.settings = settings(max_examples=40, stateful_step_count=15)
TestAcademicProfileLife = AcademicProfileLife.TestCase
