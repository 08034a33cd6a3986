"""Supervisors told of repeated absences: the rule, and what the read side tells it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from shared import events as ev
from shared.notifications import Audience, NotificationPriority, NotificationType, notifications_for
from shared.notifications.audience import audience_of
from shared.readmodels.documents import (
    CENTRE,
    CENTRE_STAFF,
    PERSON,
    SESSION,
    STUDENT,
    Centre,
    CentreStaff,
    Document,
    Kind,
    Person,
    Seat,
    Session,
    Student,
    StudentSession,
)
from shared.readmodels.times import iso
from shared.tenancy.roles import Role

SESSION_ID = uuid4()
ANNA = uuid4()
SUPERVISOR, ADMIN, TUTOR = str(uuid4()), str(uuid4()), str(uuid4())
AT = datetime(2025, 4, 5, 22, 0, tzinfo=UTC)
STARTS = datetime(2025, 4, 5, 23, 30, tzinfo=UTC)


def marked(status: ev.AttendanceStatus, version: int = 5) -> ev.AttendanceMarked:
    return ev.AttendanceMarked(
        centre_id="sydney",
        aggregate_id=uuid5(SESSION_ID, str(ANNA)),
        aggregate_version=version,
        occurred_at=AT,
        actor_id=UUID(TUTOR),
        actor_role=Role.TEACHER,
        session_id=SESSION_ID,
        student_id=ANNA,
        status=status,
    )


def audience(streak: int) -> Audience:
    return Audience(
        time_zone="Australia/Sydney",
        session_title="Fractions clinic",
        session_starts_at=STARTS,
        tutor_id=TUTOR,
        student_ids=(str(ANNA),),
        staff=(SUPERVISOR, ADMIN),
        student_name="Anna",
        absences_in_a_row=tuple(f"s{n}" for n in range(streak)),
    )


def test_a_second_absence_in_a_row_tells_the_centres_supervisors_and_admins() -> None:
    told = notifications_for(marked(ev.AttendanceStatus.ABSENT), audience(2))
    assert [n.person_id for n in told] == [SUPERVISOR, ADMIN]
    first = told[0]
    assert (first.type, first.priority) == (
        NotificationType.STUDENT_AT_RISK,
        NotificationPriority.HIGH,
    )
    assert first.title == "Anna has missed 2 sessions in a row"
    assert first.body == (
        "Anna was absent from Fractions clinic on Sun 6 Apr 2025, 09:30 AEST, "
        "and from the session marked before it."
    )
    assert first.link == f"/api/v1/students/{ANNA}/overview"
    assert first.source_event == "AttendanceMarked"
    third = notifications_for(marked(ev.AttendanceStatus.ABSENT), audience(3))
    assert third[0].body.endswith("and from the 2 sessions marked before it.")


def test_a_first_absence_or_any_other_mark_tells_nobody() -> None:
    assert notifications_for(marked(ev.AttendanceStatus.ABSENT), audience(1)) == []
    assert notifications_for(marked(ev.AttendanceStatus.ABSENT), audience(0)) == []
    for status in (
        ev.AttendanceStatus.PRESENT,
        ev.AttendanceStatus.LATE,
        ev.AttendanceStatus.EXCUSED,
    ):
        assert notifications_for(marked(status), audience(3)) == []


def test_the_same_absence_marked_again_has_the_same_ids() -> None:
    first = notifications_for(marked(ev.AttendanceStatus.ABSENT, 5), audience(2))
    again = notifications_for(marked(ev.AttendanceStatus.ABSENT, 7), audience(2))
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    assert len({n.notification_id for n in first}) == 2


class Docs:
    def __init__(self, *docs: tuple[Kind[Any], str, Document]) -> None:
        self._docs = {(kind.name, key): doc for kind, key, doc in docs}

    def get(self, kind: Kind[Any], key: str) -> Any:
        return self._docs.get((kind.name, key))


def _student_session(
    sid: str, starts: datetime, status: ev.AttendanceStatus | None
) -> StudentSession:
    return StudentSession(
        session_id=sid,
        title="Earlier",
        status=ev.SessionStatus.COMPLETED,
        starts_at=iso(starts),
        ends_at=iso(starts),
        enrolled=True,
        attendance=status,
    )


def test_the_audience_counts_the_absences_as_they_stood_when_this_one_was_marked() -> None:
    def a_session(sid: UUID, starts: datetime, seat: Seat | None = None) -> Session:
        return Session(
            session_id=str(sid),
            centre_id="sydney",
            tutor_id=TUTOR,
            title="Fractions clinic",
            status=ev.SessionStatus.COMPLETED,
            starts_at=iso(starts),
            ends_at=iso(starts),
            time_zone="Australia/Sydney",
            mode=ev.SessionMode.ONLINE,
            students={str(ANNA): seat} if seat else {},
        )

    earlier_id = uuid4()
    earlier = _student_session(
        str(earlier_id), datetime(2025, 4, 1, tzinfo=UTC), ev.AttendanceStatus.ABSENT
    )
    seat = Seat(student_id=str(ANNA), enrolled=True, attendance=ev.AttendanceStatus.ABSENT)
    seat.marked_at = iso(datetime(2025, 4, 1, 1, tzinfo=UTC))
    common = (
        (
            CENTRE,
            "sydney",
            Centre(centre_id="sydney", name="S", time_zone="Australia/Sydney", help_sla_minutes={}),
        ),
        (CENTRE_STAFF, "sydney", CentreStaff(centre_id="sydney", staff=[SUPERVISOR])),
        (SESSION, str(SESSION_ID), a_session(SESSION_ID, STARTS)),
        (PERSON, str(ANNA), Person(person_id=str(ANNA), name="Anna", role=Role.STUDENT)),
        (
            STUDENT,
            str(ANNA),
            Student(student_id=str(ANNA), centre_id="sydney", sessions={str(earlier_id): earlier}),
        ),
    )
    docs = Docs(
        *common,
        (SESSION, str(earlier_id), a_session(earlier_id, datetime(2025, 4, 1, tzinfo=UTC), seat)),
    )
    found = audience_of(marked(ev.AttendanceStatus.ABSENT), docs)
    assert found.absences_in_a_row == (str(SESSION_ID), str(earlier_id))
    assert (found.student_name, found.staff) == ("Anna", (SUPERVISOR,))
    (told,) = notifications_for(marked(ev.AttendanceStatus.ABSENT), found)
    assert told.person_id == SUPERVISOR
    assert audience_of(marked(ev.AttendanceStatus.PRESENT), docs).absences_in_a_row == ()
    # The earlier mark made after this one (read by a notifier that is behind): not counted.
    seat.marked_at = iso(AT + timedelta(hours=1))
    alone = audience_of(marked(ev.AttendanceStatus.ABSENT), docs)
    assert alone.absences_in_a_row == (str(SESSION_ID),)
    assert notifications_for(marked(ev.AttendanceStatus.ABSENT), alone) == []
