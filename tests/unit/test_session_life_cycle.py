"""Whatever sequence of verbs staff send a session, it stays a session a centre can trust."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.command.domain.aggregate import (
    DomainError,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
)
from services.command.domain.session import LONGEST_SESSION, Session
from services.command.domain.timetable import TimetableWeek, TutorTimetable, week_of, weeks_touched
from shared.events import Event, SessionMode, SessionStatus
from tests.unit.test_session import START, TUTOR

S = SessionStatus
ARROWS = {(S.SCHEDULED, S.LIVE), (S.LIVE, S.COMPLETED), (S.SCHEDULED, S.CANCELLED)}
STUDENTS = [uuid4() for _ in range(7)]
OVER = (S.COMPLETED, S.CANCELLED)


@dataclass
class Expected:
    """What the session should be, kept by hand alongside it."""

    status: SessionStatus
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    capacity: int
    roster: set[UUID] = field(default_factory=set)


class SessionLifeCycle(RuleBasedStateMachine):
    """Status moves only along SCHEDULED→LIVE→COMPLETED and SCHEDULED→CANCELLED, the roster
    never outgrows the capacity, a removed student is not enrolled, a refused verb records
    nothing, the history rebuilds the same session, and the tutor's timetable follows it."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[Event] = []
        weeks = [week_of(START) + timedelta(days=7 * n) for n in range(-2, 4)]
        self.timetable = TutorTimetable(
            TUTOR.user_id, [TimetableWeek.of(TUTOR.user_id, w, "alpha") for w in weeks]
        )

    @initialize(
        capacity=st.integers(1, 5),
        hours=st.integers(-48, 48),
        minutes=st.integers(15, 240),
        mode=st.sampled_from(list(SessionMode)),
    )
    def schedule(self, capacity: int, hours: int, minutes: int, mode: SessionMode) -> None:
        starts = START + timedelta(hours=hours)
        self.session = Session.schedule(
            uuid4(),
            by=TUTOR,
            tutor_id=TUTOR.user_id,
            title="Algebra",
            starts_at=starts,
            ends_at=starts + timedelta(minutes=minutes),
            time_zone="Australia/Sydney",
            mode=mode,
            meeting_link="https://meet.example.org/a",
            location="Room 1",
            capacity=capacity,
        )
        self.expected = Expected(
            S.SCHEDULED, starts, starts + timedelta(minutes=minutes), mode, capacity
        )
        self.history += self.session.collect_events()
        self.timetable.book(self.session, by=TUTOR)

    def attempt(self, act: Callable[[], None], refusal: type[DomainError] | None) -> bool:
        """Run a verb the model expects to be taken (``refusal`` None) or refused with
        ``refusal``."""
        before = (self.session.version, self.session.status)
        if refusal is None:
            act()
        else:
            with pytest.raises(refusal):
                act()
        recorded = self.session.collect_events()
        assert len(recorded) == (0 if refusal else 1)
        assert self.session.version == before[0] + len(recorded)
        after = self.session.status
        assert after == before[1] or (before[1], after) in ARROWS
        self.history += recorded
        return refusal is None

    @rule()
    def start(self) -> None:
        allowed = self.expected.status is S.SCHEDULED
        if self.attempt(
            lambda: self.session.start(by=TUTOR), None if allowed else InvalidTransition
        ):
            self.expected.status = S.LIVE

    @rule()
    def end(self) -> None:
        allowed = self.expected.status is S.LIVE
        if self.attempt(lambda: self.session.end(by=TUTOR), None if allowed else InvalidTransition):
            self.expected.status = S.COMPLETED

    @rule(reason=st.sampled_from(["tutor is ill", "  "]))
    def cancel(self, reason: str) -> None:
        refusal = (
            InvalidValue
            if not reason.strip()
            else None
            if self.expected.status is S.SCHEDULED
            else InvalidTransition
        )
        if self.attempt(lambda: self.session.cancel(by=TUTOR, reason=reason), refusal):
            self.expected.status = S.CANCELLED
            self.timetable.release(self.session, by=TUTOR)

    @rule(hours=st.integers(-24 * 8, 24 * 8), minutes=st.integers(-30, 15 * 60))
    def reschedule(self, hours: int, minutes: int) -> None:
        starts = START + timedelta(hours=hours)
        ends = starts + timedelta(minutes=minutes)
        refusal = (
            InvalidTransition
            if self.expected.status is not S.SCHEDULED
            else None
            if timedelta(0) < ends - starts <= LONGEST_SESSION
            else InvalidValue
        )
        if self.attempt(
            lambda: self.session.reschedule(by=TUTOR, starts_at=starts, ends_at=ends), refusal
        ):
            self.expected.starts_at, self.expected.ends_at = starts, ends
            self.timetable.book(self.session, by=TUTOR)

    @rule(minutes=st.integers(0, 150))
    def extend(self, minutes: int) -> None:
        ends = self.expected.ends_at + timedelta(minutes=minutes)
        refusal = (
            InvalidTransition
            if self.expected.status is not S.LIVE
            else None
            if 1 <= minutes <= 120 and ends - self.expected.starts_at <= LONGEST_SESSION
            else InvalidValue
        )
        if self.attempt(lambda: self.session.extend(by=TUTOR, minutes=minutes), refusal):
            self.expected.ends_at = ends
            self.timetable.book(self.session, by=TUTOR)

    @rule(mode=st.sampled_from(list(SessionMode)))
    def change_mode(self, mode: SessionMode) -> None:
        refusal = InvalidTransition if self.expected.status in OVER else None

        def change() -> None:
            self.session.change_mode(
                by=TUTOR, mode=mode, location="Room 2", meeting_link="https://meet.example.org/b"
            )

        if self.attempt(change, refusal):
            self.expected.mode = mode

    @rule(student=st.sampled_from(STUDENTS))
    def enrol(self, student: UUID) -> None:
        refusal = (
            InvalidTransition
            if self.expected.status in OVER
            else RuleViolated
            if student in self.expected.roster
            or len(self.expected.roster) >= self.expected.capacity
            else None
        )
        if self.attempt(lambda: self.session.enrol(student, by=TUTOR, course_id="maths"), refusal):
            self.expected.roster.add(student)

    @rule(student=st.sampled_from(STUDENTS))
    def remove(self, student: UUID) -> None:
        refusal = (
            RuleViolated
            if student not in self.expected.roster
            else InvalidTransition
            if self.expected.status in OVER
            else None
        )
        if self.attempt(lambda: self.session.remove(student, by=TUTOR), refusal):
            self.expected.roster.discard(student)

    @invariant()
    def the_session_is_as_expected(self) -> None:
        session, expected = self.session, self.expected
        assert (
            session.status,
            session.starts_at,
            session.ends_at,
            session.mode,
            session.capacity,
        ) == (
            expected.status,
            expected.starts_at,
            expected.ends_at,
            expected.mode,
            expected.capacity,
        )
        assert set(session.roster) == expected.roster and len(session.roster) <= session.capacity

    @invariant()
    def replaying_the_history_rebuilds_the_same_session(self) -> None:
        assert [e.aggregate_version for e in self.history] == list(range(1, len(self.history) + 1))
        rebuilt = Session.project(None, self.history)
        assert rebuilt is not None and rebuilt.version == self.session.version
        assert (
            rebuilt.status,
            rebuilt.starts_at,
            rebuilt.ends_at,
            rebuilt.mode,
            rebuilt.capacity,
        ) == (
            self.session.status,
            self.session.starts_at,
            self.session.ends_at,
            self.session.mode,
            self.session.capacity,
        )
        assert rebuilt.roster == self.session.roster

    @invariant()
    def the_timetable_holds_the_session_where_it_is_unless_cancelled(self) -> None:
        booked = {
            week.week_of: week.bookings[self.session.id]
            for week in self.timetable.weeks
            if self.session.id in week.bookings
        }
        if self.session.status is S.CANCELLED:
            assert booked == {}
            return
        assert sorted(booked) == weeks_touched(self.session.starts_at, self.session.ends_at)
        assert {(b.starts_at, b.ends_at) for b in booked.values()} == {
            (self.session.starts_at, self.session.ends_at)
        }


SessionLifeCycle.TestCase.settings = settings(
    max_examples=80, stateful_step_count=25, deadline=None
)
TestSessionLifeCycle = SessionLifeCycle.TestCase
