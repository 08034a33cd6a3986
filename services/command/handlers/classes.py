"""Class cohorts: a teacher's group of students, and sessions for the whole class."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from services.command.commands.classes import (
    AddClassMember,
    CancelClass,
    CreateClass,
    RemoveClassMember,
    ScheduleClassSession,
    UpdateClass,
)
from services.command.commands.series import ScheduleClassRule
from services.command.domain.aggregate import InvalidTransition, RuleViolated
from services.command.domain.cohort import ClassCohort, weekly_starts
from services.command.domain.directory import Centre
from services.command.domain.session import Session
from services.command.handlers import timetable
from services.command.handlers.common import student, tutor
from services.command.handlers.series import weekly_rule
from services.command.responses import ClassRuleView, ClassView, OverlapWarning, SessionView
from services.command.unit_of_work import UnitOfWork
from shared.tenancy import Forbidden


def create_class(command: CreateClass, uow: UnitOfWork) -> ClassView:
    tutor(uow, command.teacher_id)
    cohort = ClassCohort.create(
        uuid4(),
        by=uow.actor,
        name=command.name,
        subject=command.subject,
        teacher_id=command.teacher_id,
        capacity=command.capacity,
    )
    uow.add(cohort)
    return ClassView.of(cohort)


def update_class(command: UpdateClass, uow: UnitOfWork) -> ClassView:
    cohort = uow.find(ClassCohort, command.class_id)
    tutor(uow, command.teacher_id)
    cohort.update(
        by=uow.actor,
        name=command.name,
        subject=command.subject,
        teacher_id=command.teacher_id,
        capacity=command.capacity,
    )
    return ClassView.of(cohort)


def cancel_class(command: CancelClass, uow: UnitOfWork) -> ClassView:
    cohort = uow.find(ClassCohort, command.class_id)
    cohort.cancel(by=uow.actor, reason=command.reason)
    return ClassView.of(cohort)


def add_class_member(command: AddClassMember, uow: UnitOfWork) -> ClassView:
    cohort = uow.find(ClassCohort, command.class_id)
    student(uow, command.student_id, field="student_id", refusal="only a STUDENT joins a class")
    cohort.add(command.student_id, by=uow.actor)
    return ClassView.of(cohort)


def remove_class_member(command: RemoveClassMember, uow: UnitOfWork) -> ClassView:
    cohort = uow.find(ClassCohort, command.class_id)
    cohort.remove(command.student_id, by=uow.actor)
    return ClassView.of(cohort)


def schedule_class_session(command: ScheduleClassSession, uow: UnitOfWork) -> SessionView:
    """A session for the whole class: its teacher, every member enrolled, in one commit."""
    cohort = _class_to_schedule(uow, command.class_id)
    centre = uow.centre()
    if cohort.has_session_at(command.starts_at):
        raise RuleViolated("the class already has a session at that time")
    session = _class_session(
        uow,
        cohort,
        centre,
        command,
        command.starts_at,
        command.ends_at,
        command.time_zone or centre.time_zone,
    )
    cohort.sessions_scheduled([session], by=uow.actor)
    return SessionView.of(session, warnings=timetable.book(uow, [session]))


def schedule_class_rule(command: ScheduleClassRule, uow: UnitOfWork) -> ClassRuleView:
    """Every session of a weekly rule for the class, in one commit; times the class already
    has a session at are skipped."""
    centre = uow.centre()
    rule = weekly_rule(command, centre)
    cohort = _class_to_schedule(uow, command.class_id)
    slots = weekly_starts(rule, centre.longest_session)
    sessions = [
        _class_session(uow, cohort, centre, command, starts, ends, rule.time_zone)
        for starts, ends in slots
        if not cohort.has_session_at(starts)
    ]
    if not sessions:
        raise RuleViolated("the class already has a session at every time of this rule")
    cohort.sessions_scheduled(sessions, by=uow.actor, rule=rule)
    overlaps = timetable.book(uow, sessions)
    return ClassRuleView(
        class_id=cohort.id,
        session_ids=[s.id for s in sessions],
        skipped=len(slots) - len(sessions),
        warnings=[OverlapWarning.of(o) for o in overlaps],
    )


def _class_to_schedule(uow: UnitOfWork, class_id: UUID) -> ClassCohort:
    cohort = uow.find(ClassCohort, class_id)
    if cohort.cancelled:
        raise InvalidTransition("cannot schedule a session for a cancelled class")
    if uow.actor.is_teacher_other_than(cohort.teacher_id):
        raise Forbidden("a TEACHER schedules sessions only for their own classes")
    return cohort


def _class_session(
    uow: UnitOfWork,
    cohort: ClassCohort,
    centre: Centre,
    plan: ScheduleClassSession | ScheduleClassRule,
    starts_at: datetime,
    ends_at: datetime,
    time_zone: str,
) -> Session:
    """A session of the class at these times, every member enrolled; ``plan`` gives its title,
    mode, place and capacity."""
    session = Session.schedule(
        uuid4(),
        by=uow.actor,
        tutor_id=cohort.teacher_id,
        title=plan.title,
        starts_at=starts_at,
        ends_at=ends_at,
        time_zone=time_zone,
        mode=plan.mode,
        meeting_link=plan.meeting_link,
        location=plan.location,
        capacity=max(plan.capacity, len(cohort.members)),
        class_id=cohort.id,
        longest=centre.longest_session,
    )
    for student_id in sorted(cohort.members):
        session.enrol(student_id, by=uow.actor)
    uow.add(session)
    return session
