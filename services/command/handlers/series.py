"""A tutor's weekly series of sessions: scheduled in one commit, called off in one commit."""

from __future__ import annotations

from uuid import UUID, uuid4

from services.command.commands.series import (
    CancelSeries,
    ScheduleSeries,
    WeeklyRuleCommand,
)
from services.command.domain.aggregate import InvalidValue
from services.command.domain.cohort import weekly_starts
from services.command.domain.directory import Centre
from services.command.domain.series import SessionSeries
from services.command.domain.session import Session
from services.command.handlers import timetable
from services.command.handlers.common import student, tutor
from services.command.responses import OverlapWarning, SeriesCancelledView, SeriesView
from services.command.unit_of_work import UnitOfWork
from shared.events import SessionStatus, WeeklyRule
from shared.tenancy import Forbidden


def weekly_rule(command: WeeklyRuleCommand, centre: Centre) -> WeeklyRule:
    """The rule of the command; without a time zone, in the centre's."""
    return WeeklyRule(
        days_of_week=sorted(set(command.days_of_week)),
        start_time=command.start_time,
        duration_minutes=command.duration_minutes,
        first_date=command.first_date,
        weeks=command.weeks,
        time_zone=command.time_zone or centre.time_zone,
    )


def schedule_series(command: ScheduleSeries, uow: UnitOfWork) -> SeriesView:
    """Every session of a weekly rule for one tutor, each with the same students, in one
    commit."""
    actor = uow.actor
    centre = uow.centre()
    rule = weekly_rule(command, centre)
    tutor_id = command.tutor_id or actor.user_id
    if actor.is_teacher_other_than(tutor_id):
        raise Forbidden("a TEACHER schedules sessions only for themselves")
    students = command.students
    if len(students) > command.capacity:
        raise InvalidValue(
            f"more students than the capacity ({command.capacity})", field="students"
        )
    seen: set[UUID] = set()
    for index, enrolled in enumerate(students):
        if enrolled.student_id in seen:
            raise InvalidValue("a student appears twice", field=f"students[{index}].student_id")
        seen.add(enrolled.student_id)
    slots = weekly_starts(rule, centre.longest_session)
    tutor(uow, tutor_id, field="tutor_id")
    for index, enrolled in enumerate(students):
        student(
            uow,
            enrolled.student_id,
            field=f"students[{index}].student_id",
            refusal="only a STUDENT can be enrolled",
        )
    sessions = []
    for starts, ends in slots:
        session = Session.schedule(
            uuid4(),
            by=actor,
            tutor_id=tutor_id,
            title=command.title,
            starts_at=starts,
            ends_at=ends,
            time_zone=rule.time_zone,
            mode=command.mode,
            meeting_link=command.meeting_link,
            location=command.location,
            capacity=command.capacity,
            longest=centre.longest_session,
        )
        for enrolled in students:
            session.enrol(
                enrolled.student_id,
                by=actor,
                course_id=enrolled.course_id,
                lesson_id=enrolled.lesson_id,
            )
        uow.add(session)
        sessions.append(session)
    overlaps = timetable.book(uow, sessions)
    series = SessionSeries.schedule(
        uuid4(), actor.centre_id, sessions, by=actor, rule=rule, title=command.title
    )
    uow.add(series)
    return SeriesView(
        series_id=series.id,
        tutor_id=tutor_id,
        session_ids=[s.id for s in sessions],
        enrolled=len(students),
        warnings=[OverlapWarning.of(o) for o in overlaps],
    )


def cancel_series(command: CancelSeries, uow: UnitOfWork) -> SeriesCancelledView:
    """Call off every session of a series still to come, in one commit; the tutor's time in
    those weeks is given back. Sessions that started or ended stand."""
    series = uow.find(SessionSeries, command.series_id)
    if uow.actor.is_teacher_other_than(series.tutor_id):
        raise Forbidden("a TEACHER may act only on their own sessions")
    sessions = [uow.get(Session, session_id) for session_id in series.session_ids]
    cancelled = series.cancel(sessions, by=uow.actor, reason=command.reason)
    times = timetable.timetable(
        uow, series.tutor_id, *((s.starts_at, s.ends_at) for s in cancelled)
    )
    for session in cancelled:
        times.release(session, by=uow.actor)
    return SeriesCancelledView(
        series_id=command.series_id,
        cancelled_session_ids=[s.id for s in cancelled],
        standing_session_ids=[s.id for s in sessions if s.status is not SessionStatus.CANCELLED],
    )
