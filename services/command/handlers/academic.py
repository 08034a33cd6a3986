"""A student's academic profile: the level they work at in each course, and content chosen
for them over the automatic sequence."""

from __future__ import annotations

from uuid import UUID

from msgspec import UNSET

from services.command.commands.academic import (
    AssessSubject,
    AssignContent,
    ChangeWorkingLevel,
    WithdrawContentAssignment,
)
from services.command.domain.academic import AcademicProfile, academic_profile_id
from services.command.domain.aggregate import InvalidValue, NotFound
from services.command.domain.directory import Person
from services.command.domain.session import Session
from services.command.responses import ContentAssignmentView, SubjectView, WithStatus
from services.command.unit_of_work import UnitOfWork
from shared.events import SessionStatus
from shared.tenancy import Forbidden, Permission, Role, require


def _profile(uow: UnitOfWork, student_id: UUID) -> AcademicProfile:
    """The profile of a STUDENT of the actor's centre; anyone else is not found."""
    if uow.find(Person, student_id).role is not Role.STUDENT:
        raise NotFound("no such student")
    return uow.get_or_start(
        AcademicProfile,
        academic_profile_id(student_id),
        lambda: AcademicProfile.of(student_id, uow.actor.centre_id),
    )


def _subject(profile: AcademicProfile, course_id: str) -> SubjectView:
    subject = profile.subjects[course_id.strip()]
    return SubjectView(
        student_id=profile.student_id,
        course_id=subject.course_id,
        school_grade=subject.school_grade,
        working_level=subject.working_level,
    )


def _assignment(
    profile: AcademicProfile, assignment_id: UUID, *, lesson_changed: bool | None = None
) -> ContentAssignmentView:
    assignment = profile.assignments[assignment_id]
    return ContentAssignmentView(
        assignment_id=assignment.id,
        student_id=profile.student_id,
        course_id=assignment.course_id,
        lesson_id=assignment.lesson_id,
        exercise_id=assignment.exercise_id,
        active=assignment.active,
        replaces=assignment.replaces,
        lesson_changed=UNSET if lesson_changed is None else lesson_changed,
    )


def assess_subject(command: AssessSubject, uow: UnitOfWork) -> WithStatus[SubjectView]:
    """Record the grade a student is in at school and the level they work at in a course:
    201 the first time for the course, 200 after."""
    profile = _profile(uow, command.student_id)
    first = command.course_id.strip() not in profile.subjects
    profile.assess(
        command.course_id,
        by=uow.actor,
        school_grade=command.school_grade,
        working_level=command.working_level,
        notes=command.notes,
    )
    return WithStatus(_subject(profile, command.course_id), 201 if first else 200)


def change_working_level(command: ChangeWorkingLevel, uow: UnitOfWork) -> SubjectView:
    profile = _profile(uow, command.student_id)
    profile.change_working_level(
        command.course_id,
        by=uow.actor,
        level=command.level,
        change_type=command.change_type,
        reason=command.reason,
    )
    return _subject(profile, command.course_id)


def assign_content(command: AssignContent, uow: UnitOfWork) -> ContentAssignmentView:
    """Override the automatic content sequence of a course for one student."""
    actor = uow.actor
    profile = _profile(uow, command.student_id)
    session = None
    if command.session_id is not None:
        session = uow.find(Session, command.session_id, field="session_id")
        if not session.is_enrolled(command.student_id):
            raise InvalidValue("the student is not enrolled in this session", field="session_id")
    assignment_id = profile.assign_content(
        command.course_id,
        by=actor,
        reason=command.reason,
        lesson_id=command.lesson_id,
        exercise_id=command.exercise_id,
        session_id=command.session_id,
    )
    assignment = profile.assignments[assignment_id]
    moved = False
    if (
        session is not None
        and assignment.lesson_id is not None
        and session.status in (SessionStatus.SCHEDULED, SessionStatus.LIVE)
    ):
        # The lesson assigned for a session that is still to run is the one the student
        # works on in it: the session's roster follows, in the same commit.
        require(actor, Permission.LESSON_CHANGE)
        if actor.is_teacher_other_than(session.tutor_id):
            raise Forbidden("a TEACHER changes lessons only in their own sessions")
        moved = session.change_lesson(
            command.student_id,
            by=actor,
            lesson_id=assignment.lesson_id,
            course_id=assignment.course_id,
            reason=command.reason,
            assignment_id=assignment_id,
        )
    return _assignment(profile, assignment_id, lesson_changed=moved)


def withdraw_content_assignment(
    command: WithdrawContentAssignment, uow: UnitOfWork
) -> ContentAssignmentView:
    profile = _profile(uow, command.student_id)
    profile.withdraw_assignment(command.assignment_id, by=uow.actor, reason=command.reason)
    return _assignment(profile, command.assignment_id)
