"""A student's academic profile: the level they work at in each course, and content overrides.

One aggregate per student, so every level change of a student is decided against the levels
recorded before it (two tutors changing the same level at once conflict, never overwrite).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    NotFound,
    RuleViolated,
    applies,
)
from shared.events import (
    ContentAssigned,
    ContentAssignmentWithdrawn,
    LevelChangeType,
    SubjectAssessed,
    WorkingLevelChanged,
)
from shared.tenancy import Actor

LOWEST_LEVEL, HIGHEST_LEVEL = 0, 12
"""Kindergarten to Year 12."""
MAX_TEXT = 2000
MAX_REF = 100


class AssignmentNotFound(NotFound):
    """No content assignment by that id for this student (HTTP 404)."""


def academic_profile_id(student_id: UUID) -> UUID:
    return uuid5(student_id, "academic-profile")


@dataclass
class SubjectLevel:
    course_id: str
    school_grade: int
    working_level: int


@dataclass
class ContentAssignment:
    id: UUID
    course_id: str
    lesson_id: str | None
    exercise_id: str | None
    replaces: UUID | None = None
    active: bool = True


class AcademicProfile(Aggregate):
    student_id: UUID
    subjects: dict[str, SubjectLevel]
    assignments: dict[UUID, ContentAssignment]

    @classmethod
    def of(cls, student_id: UUID, centre_id: str) -> AcademicProfile:
        """A profile that has recorded nothing yet."""
        profile = cls(academic_profile_id(student_id), centre_id)
        profile.student_id = student_id
        return profile

    def assess(
        self,
        course_id: str,
        *,
        by: Actor,
        school_grade: int,
        working_level: int,
        notes: str | None = None,
    ) -> None:
        """Record an assessment; a re-assessment replaces the grade and level it found."""
        course_id = _course(course_id)
        _level(school_grade, "school_grade")
        _level(working_level, "working_level")
        values.free_text(notes, "notes", MAX_TEXT)
        known = self.subjects.get(course_id)
        self._record(
            SubjectAssessed,
            by,
            student_id=self.student_id,
            course_id=course_id,
            school_grade=school_grade,
            working_level=working_level,
            previous_working_level=known.working_level if known else None,
            notes=(notes.strip() or None) if notes else None,
        )

    def change_working_level(
        self, course_id: str, *, by: Actor, level: int, change_type: LevelChangeType, reason: str
    ) -> None:
        course_id = _course(course_id)
        _level(level, "level")
        if change_type is LevelChangeType.ASSESSMENT_RESULT:
            raise InvalidValue(
                "an assessment result is recorded by assessing the subject", field="change_type"
            )
        reason = values.reason(reason, MAX_TEXT)
        subject = self.subjects.get(course_id)
        if subject is None:
            raise InvalidTransition(f"assess {course_id!r} before changing its working level")
        if level == subject.working_level:
            raise RuleViolated(f"the student already works at level {level} in {course_id!r}")
        if change_type is LevelChangeType.LEVEL_ADVANCEMENT and level < subject.working_level:
            raise InvalidValue("an advancement raises the level", field="change_type")
        if change_type is LevelChangeType.LEVEL_REGRESSION and level > subject.working_level:
            raise InvalidValue("a regression lowers the level", field="change_type")
        self._record(
            WorkingLevelChanged,
            by,
            student_id=self.student_id,
            course_id=course_id,
            previous_level=subject.working_level,
            new_level=level,
            change_type=change_type,
            reason=reason,
        )

    def assign_content(
        self,
        course_id: str,
        *,
        by: Actor,
        reason: str,
        lesson_id: str | None = None,
        exercise_id: str | None = None,
        session_id: UUID | None = None,
    ) -> UUID:
        """Override the automatic sequence of a course; supersedes its active assignment."""
        course_id = _course(course_id)
        lesson_id = _ref(lesson_id, "lesson_id")
        exercise_id = _ref(exercise_id, "exercise_id")
        if lesson_id is None and exercise_id is None:
            raise InvalidValue("name the lesson or the exercise to assign", field="lesson_id")
        reason = values.reason(reason, MAX_TEXT)
        assignment_id = uuid5(self.id, f"assignment:{len(self.assignments) + 1}")
        active = self.active_assignment(course_id)
        self._record(
            ContentAssigned,
            by,
            student_id=self.student_id,
            assignment_id=assignment_id,
            course_id=course_id,
            lesson_id=lesson_id,
            exercise_id=exercise_id,
            reason=reason,
            session_id=session_id,
            replaces=active.id if active else None,
        )
        return assignment_id

    def withdraw_assignment(self, assignment_id: UUID, *, by: Actor, reason: str) -> None:
        assignment = self.assignments.get(assignment_id)
        if assignment is None:
            raise AssignmentNotFound("no such content assignment for this student")
        if not assignment.active:
            raise InvalidTransition("the content assignment is no longer active")
        self._record(
            ContentAssignmentWithdrawn,
            by,
            student_id=self.student_id,
            assignment_id=assignment_id,
            course_id=assignment.course_id,
            reason=values.reason(reason, MAX_TEXT),
        )

    def active_assignment(self, course_id: str) -> ContentAssignment | None:
        return next(
            (a for a in self.assignments.values() if a.course_id == course_id and a.active), None
        )

    def _blank(self) -> None:
        self.subjects = {}
        self.assignments = {}

    @applies(SubjectAssessed)
    def _assessed(self, event: SubjectAssessed) -> None:
        self.student_id = event.student_id
        self.subjects[event.course_id] = SubjectLevel(
            event.course_id, event.school_grade, event.working_level
        )

    @applies(WorkingLevelChanged)
    def _level_changed(self, event: WorkingLevelChanged) -> None:
        self.subjects[event.course_id].working_level = event.new_level

    @applies(ContentAssigned)
    def _content_assigned(self, event: ContentAssigned) -> None:
        self.student_id = event.student_id
        if event.replaces is not None:
            self.assignments[event.replaces].active = False
        self.assignments[event.assignment_id] = ContentAssignment(
            event.assignment_id, event.course_id, event.lesson_id, event.exercise_id, event.replaces
        )

    @applies(ContentAssignmentWithdrawn)
    def _assignment_withdrawn(self, event: ContentAssignmentWithdrawn) -> None:
        self.assignments[event.assignment_id].active = False


def _course(course_id: str) -> str:
    return values.text(course_id, "course_id", MAX_REF, what="course id")


def _ref(value: str | None, field: str) -> str | None:
    return values.ref(value, field, MAX_REF)


def _level(value: int, field: str) -> None:
    if isinstance(value, bool) or not LOWEST_LEVEL <= value <= HIGHEST_LEVEL:
        raise InvalidValue(
            f"a level is {LOWEST_LEVEL} (Kindergarten) to {HIGHEST_LEVEL} (Year 12)", field=field
        )
