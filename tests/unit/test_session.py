from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.command.domain.aggregate import InvalidTransition, InvalidValue, RuleViolated
from services.command.domain.session import Session
from shared.events import SessionMode, SessionScheduled, SessionStatus
from shared.tenancy import Actor, Role

TUTOR = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")
START = datetime(2026, 11, 25, 9, tzinfo=UTC)

ALLOWED = {
    (SessionStatus.SCHEDULED, "start"): SessionStatus.LIVE,
    (SessionStatus.LIVE, "end"): SessionStatus.COMPLETED,
    (SessionStatus.SCHEDULED, "cancel"): SessionStatus.CANCELLED,
}


class Plan(TypedDict, total=False):
    """What ``Session.schedule`` takes besides the session's id."""

    by: Actor
    tutor_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    mode: SessionMode
    meeting_link: str | None
    location: str | None
    capacity: int
    class_id: UUID | None


def scheduled(**overrides: Unpack[Plan]) -> Session:
    plan: Plan = {
        "by": TUTOR,
        "tutor_id": TUTOR.user_id,
        "title": "Algebra",
        "starts_at": START,
        "ends_at": START + timedelta(hours=1),
        "time_zone": "Australia/Sydney",
        "mode": SessionMode.ONLINE,
        "meeting_link": "https://meet.example.org/a",
    }
    plan.update(overrides)
    return Session.schedule(uuid4(), **plan)


def act(session: Session, verb: str) -> None:
    if verb == "start":
        session.start(by=TUTOR)
    elif verb == "end":
        session.end(by=TUTOR)
    else:
        session.cancel(by=TUTOR, reason="tutor is ill")


@given(st.lists(st.sampled_from(["start", "end", "cancel"]), max_size=8))
def test_only_the_guarded_transitions_happen(verbs: list[str]) -> None:
    session = scheduled()
    history = session.collect_events()
    for verb in verbs:
        before = session.status
        expected = ALLOWED.get((before, verb))
        if expected is None:
            with pytest.raises(InvalidTransition):
                act(session, verb)
            assert session.status is before
        else:
            act(session, verb)
            assert session.status is expected
        history += session.collect_events()
    rebuilt = Session.project(None, history)
    assert rebuilt is not None
    assert (rebuilt.status, rebuilt.version) == (session.status, session.version)


def test_a_completed_session_cannot_go_back_to_scheduled_or_live() -> None:
    session = scheduled()
    session.start(by=TUTOR)
    session.end(by=TUTOR)
    for verb in ("start", "end", "cancel"):
        with pytest.raises(InvalidTransition):
            act(session, verb)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "  "}, "title"),
        ({"ends_at": START}, "ends_at"),
        ({"ends_at": START + timedelta(hours=13)}, "ends_at"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"meeting_link": None}, "meeting_link"),
        ({"mode": SessionMode.PHYSICAL, "location": None}, "location"),
        (
            {"mode": SessionMode.HYBRID, "location": "Room 1", "meeting_link": "ftp://x"},
            "meeting_link",
        ),
        ({"capacity": 0}, "capacity"),
        ({"starts_at": START.replace(tzinfo=None)}, "starts_at"),
    ],
)
def test_scheduling_rejects_bad_plans_naming_the_field(overrides: Plan, field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        scheduled(**overrides)
    assert error.value.field == field


def test_hybrid_sessions_keep_both_link_and_location() -> None:
    session = scheduled(mode=SessionMode.HYBRID, location="Room 2")
    (event,) = session.collect_events()
    assert isinstance(event, SessionScheduled)
    assert event.meeting_link and event.location == "Room 2"


def test_enrolment_respects_capacity_and_duplicates() -> None:
    session = scheduled(capacity=2)
    first, second = uuid4(), uuid4()
    session.enrol(first, by=TUTOR, course_id="maths", lesson_id="fractions")
    with pytest.raises(RuleViolated):
        session.enrol(first, by=TUTOR)
    session.enrol(second, by=TUTOR)
    with pytest.raises(RuleViolated, match="full"):
        session.enrol(uuid4(), by=TUTOR)
    session.remove(first, by=TUTOR)
    session.enrol(uuid4(), by=TUTOR)
    assert len(session.roster) == 2


def test_each_student_keeps_their_own_course_and_lesson() -> None:
    session = scheduled()
    ann, ben = uuid4(), uuid4()
    session.enrol(ann, by=TUTOR, course_id="english", lesson_id="inference")
    session.enrol(ben, by=TUTOR, course_id="maths", lesson_id="ratios")
    rebuilt = Session.project(None, session.collect_events())
    assert rebuilt is not None
    assert (rebuilt.roster[ann].course_id, rebuilt.roster[ben].lesson_id) == ("english", "ratios")


def test_events_carry_the_centre_the_actor_and_consecutive_versions() -> None:
    session = scheduled()
    session.start(by=TUTOR)
    events = session.collect_events()
    assert [e.aggregate_version for e in events] == [1, 2]
    assert {(e.centre_id, e.actor_id, e.actor_role) for e in events} == {
        ("alpha", TUTOR.user_id, Role.TEACHER)
    }
