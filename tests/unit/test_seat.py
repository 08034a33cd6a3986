from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.command.domain.aggregate import InvalidTransition, RuleViolated
from services.command.domain.catch_up import CatchUp
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from shared.events import AttendanceStatus, CatchUpStatus, HelpPriority, HelpRequestRaised
from shared.tenancy import Actor, Role
from tests.unit.test_session import TUTOR, scheduled

SLA = timedelta(minutes=5)


def live_session_with(student: Actor) -> Session:
    session = scheduled()
    session.enrol(student.user_id, by=TUTOR)
    session.start(by=TUTOR)
    session.collect_events()
    return session


def student() -> Actor:
    return Actor(user_id=uuid4(), role=Role.STUDENT, centre_id="alpha")


def test_help_needs_a_live_session_and_an_enrolled_student() -> None:
    ann = student()
    session = scheduled()
    session.enrol(ann.user_id, by=TUTOR)
    seat = Seat.of(session, ann.user_id)
    with pytest.raises(RuleViolated, match="LIVE"):
        seat.raise_help_request(session, HelpPriority.LOW, by=ann, sla=SLA)
    session.start(by=TUTOR)
    stranger = student()
    with pytest.raises(RuleViolated, match="enrolled"):
        Seat.of(session, stranger.user_id).raise_help_request(
            session, HelpPriority.LOW, by=stranger, sla=SLA
        )
    seat.raise_help_request(session, HelpPriority.URGENT, by=ann, sla=SLA)
    (event,) = seat.collect_events()
    assert isinstance(event, HelpRequestRaised)
    assert event.sla_due_at - event.occurred_at == SLA


@given(st.lists(st.sampled_from(list(HelpPriority)), min_size=1, max_size=6))
def test_at_most_one_active_help_request_per_student_per_session(
    priorities: list[HelpPriority],
) -> None:
    ann = student()
    session = live_session_with(ann)
    seat = Seat.of(session, ann.user_id)
    seat.raise_help_request(session, priorities[0], by=ann, sla=SLA)
    for priority in priorities[1:]:
        with pytest.raises(RuleViolated):
            seat.raise_help_request(session, priority, by=ann, sla=SLA)
    assert sum(r.active for r in seat.help_requests.values()) == 1
    other = student()
    session.enrol(other.user_id, by=TUTOR)
    Seat.of(session, other.user_id).raise_help_request(session, priorities[0], by=other, sla=SLA)


def test_attendance_waits_for_the_session_to_start() -> None:
    ann = student()
    session = scheduled()
    session.enrol(ann.user_id, by=TUTOR)
    with pytest.raises(InvalidTransition):
        Seat.of(session, ann.user_id).mark_attendance(session, AttendanceStatus.PRESENT, by=TUTOR)


class AttendanceAndCatchUps(RuleBasedStateMachine):
    """Whatever sequence of marks and corrections a tutor makes, the student has an open
    catch-up exactly while they are marked ABSENT, and the history keeps every mark."""

    def __init__(self) -> None:
        super().__init__()
        self.ann = student()
        self.session = live_session_with(self.ann)
        self.seat = Seat.of(self.session, self.ann.user_id)
        self.catch_ups: dict[UUID, CatchUp] = {}
        self.marks = 0

    @rule(status=st.sampled_from(list(AttendanceStatus)), notes=st.sampled_from([None, "x"]))
    def mark(self, status: AttendanceStatus, notes: str | None) -> None:
        before = (self.seat.attendance, self.seat.attendance_notes)
        change = self.seat.mark_attendance(self.session, status, by=TUTOR, notes=notes)
        if before == (status, notes):
            assert change is None
            return
        self.marks += 1
        assert change is not None and change.previous == before[0]
        if change.opens_catch_up:
            assert change.opens_catch_up not in self.catch_ups
            self.catch_ups[change.opens_catch_up] = CatchUp.assign_for_absence(
                change.opens_catch_up, self.session, self.ann.user_id, by=TUTOR
            )
        if change.closes_catch_up:
            self.catch_ups[change.closes_catch_up].cancel(by=TUTOR, reason="corrected")

    @precondition(lambda self: self.marks > 0)
    @invariant()
    def open_catch_up_iff_absent(self) -> None:
        open_ones = [c for c in self.catch_ups.values() if c.status is CatchUpStatus.PENDING]
        absent = self.seat.attendance is AttendanceStatus.ABSENT
        assert len(open_ones) == (1 if absent else 0)
        if absent:
            assert open_ones[0].id == self.seat.open_catch_up_id
            assert open_ones[0].due_at == self.session.starts_at + timedelta(days=7)

    @invariant()
    def history_keeps_every_mark(self) -> None:
        assert self.seat.version == self.marks


AttendanceAndCatchUps.TestCase.settings = settings(max_examples=60, stateful_step_count=15)
TestAttendanceAndCatchUps = AttendanceAndCatchUps.TestCase


class HelpRequestLifeCycle(RuleBasedStateMachine):
    """Whatever a tutor and a student do, a request moves only along the allowed arrows, and
    the student can ask again only once their open request is resolved or withdrawn."""

    ARROWS: ClassVar[dict[str, tuple[set[str], str]]] = {
        "acknowledge": ({"PENDING"}, "ACKNOWLEDGED"),
        "start": ({"PENDING", "ACKNOWLEDGED"}, "IN_PROGRESS"),
        "resolve": ({"PENDING", "ACKNOWLEDGED", "IN_PROGRESS"}, "RESOLVED"),
        "cancel": ({"PENDING", "ACKNOWLEDGED"}, "CANCELLED"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.ann = student()
        self.session = live_session_with(self.ann)
        self.seat = Seat.of(self.session, self.ann.user_id)
        self.model: dict[UUID, str] = {}

    @rule(priority=st.sampled_from(list(HelpPriority)))
    def ask(self, priority: HelpPriority) -> None:
        if any(s in {"PENDING", "ACKNOWLEDGED", "IN_PROGRESS"} for s in self.model.values()):
            with pytest.raises(RuleViolated):
                self.seat.raise_help_request(self.session, priority, by=self.ann, sla=SLA)
        else:
            self.model[
                self.seat.raise_help_request(self.session, priority, by=self.ann, sla=SLA)
            ] = "PENDING"

    @precondition(lambda self: self.model)
    @rule(
        verb=st.sampled_from(["acknowledge", "start", "resolve", "cancel"]), pick=st.integers(0, 10)
    )
    def move(self, verb: str, pick: int) -> None:
        request_id = list(self.model)[pick % len(self.model)]
        allowed, target = self.ARROWS[verb]
        act: Callable[[], object] = {
            "acknowledge": lambda: self.seat.acknowledge_help_request(request_id, by=TUTOR),
            "start": lambda: self.seat.start_helping(request_id, by=TUTOR),
            "resolve": lambda: self.seat.resolve_help_request(
                request_id, by=TUTOR, response="done"
            ),
            "cancel": lambda: self.seat.cancel_help_request(request_id, by=self.ann),
        }[verb]
        if self.model[request_id] in allowed:
            act()
            self.model[request_id] = target
        else:
            with pytest.raises(InvalidTransition):
                act()

    @invariant()
    def statuses_match(self) -> None:
        assert {k: r.status.value for k, r in self.seat.help_requests.items()} == self.model


HelpRequestLifeCycle.TestCase.settings = settings(max_examples=60, stateful_step_count=20)
TestHelpRequestLifeCycle = HelpRequestLifeCycle.TestCase


def test_only_the_student_who_asked_may_withdraw() -> None:
    ann = student()
    session = live_session_with(ann)
    seat = Seat.of(session, ann.user_id)
    request = seat.raise_help_request(session, HelpPriority.LOW, by=ann, sla=SLA)
    with pytest.raises(RuleViolated):
        seat.cancel_help_request(request, by=TUTOR)


class CatchUpLifeCycle(RuleBasedStateMachine):
    """PENDING → IN_PROGRESS → COMPLETED; excusing the absence cancels an open catch-up and
    leaves a finished one alone."""

    def __init__(self) -> None:
        super().__init__()
        from uuid import uuid4 as new_id

        self.ann = student()
        self.session = live_session_with(self.ann)
        self.catch_up = CatchUp.assign_for_absence(
            new_id(), self.session, self.ann.user_id, by=TUTOR
        )
        self.expected = CatchUpStatus.PENDING
        self.history = self.catch_up.collect_events()

    @rule()
    def start(self) -> None:
        if self.expected is CatchUpStatus.PENDING:
            self.catch_up.start(by=self.ann)
            self.expected = CatchUpStatus.IN_PROGRESS
        else:
            with pytest.raises(InvalidTransition):
                self.catch_up.start(by=self.ann)

    @rule()
    def complete(self) -> None:
        if self.expected in (CatchUpStatus.PENDING, CatchUpStatus.IN_PROGRESS):
            self.catch_up.complete(by=self.ann)
            self.expected = CatchUpStatus.COMPLETED
        else:
            with pytest.raises(InvalidTransition):
                self.catch_up.complete(by=self.ann)

    @rule()
    def excuse(self) -> None:
        self.catch_up.cancel(by=TUTOR, reason="excused")
        if self.expected in (CatchUpStatus.PENDING, CatchUpStatus.IN_PROGRESS):
            self.expected = CatchUpStatus.CANCELLED

    @invariant()
    def status_is_as_expected_and_rebuilds_from_history(self) -> None:
        self.history += self.catch_up.collect_events()
        rebuilt = CatchUp.project(None, self.history)
        assert self.catch_up.status is self.expected
        assert rebuilt is not None and rebuilt.status is self.expected


CatchUpLifeCycle.TestCase.settings = settings(max_examples=40, stateful_step_count=12)
TestCatchUpLifeCycle = CatchUpLifeCycle.TestCase


class Clock:
    """Stands in for datetime in the seat module, so time can pass in a test."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 25, 9, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import services.command.domain.aggregate as aggregate_module
    import services.command.domain.seat as seat_module

    clock = Clock()

    class FrozenDatetime:
        @staticmethod
        def now(tz: object = None) -> object:
            return clock.now

    monkeypatch.setattr(seat_module, "datetime", FrozenDatetime)
    monkeypatch.setattr(aggregate_module, "datetime", FrozenDatetime)
    return clock


def test_active_time_counts_gaps_under_two_minutes_while_present(clock: Clock) -> None:
    from shared.events import PresenceKind as P

    ann = student()
    session = live_session_with(ann)
    seat = Seat.of(session, ann.user_id)
    with pytest.raises(RuleViolated):
        seat.record_presence(session, P.HEARTBEAT, by=ann)  # not joined yet
    steps = [
        (0, P.JOIN, True, 0),
        (20, P.HEARTBEAT, False, 0),
        (30, P.HEARTBEAT, True, 50),
        (10, P.DISCONNECT, True, 60),
        (240, P.RECONNECT, True, 60),
        (100, P.HEARTBEAT, True, 160),
        (200, P.HEARTBEAT, True, 160),
        (60, P.LEAVE, True, 220),
    ]
    for seconds, kind, recorded, active in steps:
        clock.advance(seconds)
        assert seat.record_presence(session, kind, by=ann) is recorded
        assert seat.active_seconds == active, kind
    rebuilt = Seat.project(None, seat.collect_events())
    assert rebuilt is not None and (rebuilt.active_seconds, rebuilt.present) == (220, False)


def test_teaching_time_adds_up_per_student(clock: Clock) -> None:
    from shared.events import TeachingMode as M

    ann = student()
    session = live_session_with(ann)
    seat = Seat.of(session, ann.user_id)
    assert seat.switch_teaching_mode(session, M.TEACH, by=TUTOR)
    assert not seat.switch_teaching_mode(session, M.TEACH, by=TUTOR)
    clock.advance(90)
    seat.switch_teaching_mode(session, M.OBSERVE, by=TUTOR)
    clock.advance(10)
    seat.switch_teaching_mode(session, M.TEACH, by=TUTOR)
    clock.advance(30)
    seat.switch_teaching_mode(session, M.OBSERVE, by=TUTOR)
    assert seat.teaching_seconds == 120
