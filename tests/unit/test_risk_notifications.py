"""Supervisors told of repeated absences: the rule, from what the attendance record noticed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from shared import events as ev
from shared.notifications import (
    NOTIFYING_EVENTS,
    Audience,
    NotificationPriority,
    NotificationType,
    notifications_for,
)
from shared.notifications.audience import audience_of
from shared.readmodels.documents import (
    CENTRE,
    CENTRE_STAFF,
    PERSON,
    Centre,
    CentreStaff,
    Document,
    Kind,
    Person,
)
from shared.tenancy.roles import Role

SESSION_ID = uuid4()
ANNA = uuid4()
SUPERVISOR, ADMIN, TUTOR = str(uuid4()), str(uuid4()), str(uuid4())
AT = datetime(2025, 4, 5, 22, 0, tzinfo=UTC)
STARTS = datetime(2025, 4, 5, 23, 30, tzinfo=UTC)


def absence(
    session_id: UUID, starts_at: datetime, title: str = "Fractions clinic"
) -> ev.SessionMark:
    return ev.SessionMark(
        session_id=session_id, title=title, starts_at=starts_at, status=ev.AttendanceStatus.ABSENT
    )


def noticed(
    streak: int, *, newest: bool = True, version: int = 4, session_id: UUID = SESSION_ID
) -> ev.RepeatedAbsencesNoticed:
    """Anna's absence from the clinic made ``streak`` absences in a row (``newest``: the clinic
    is the latest of them; else the earliest)."""
    others = [
        absence(uuid4(), STARTS - timedelta(days=n + 1), "Earlier") for n in range(streak - 1)
    ]
    this = absence(session_id, STARTS)
    if not newest:
        others = [
            absence(uuid4(), STARTS + timedelta(days=n + 1), "Later") for n in range(streak - 1)
        ]
        others.reverse()
    sessions = (this, *others) if newest else (*others, this)
    return ev.RepeatedAbsencesNoticed(
        centre_id="sydney",
        aggregate_id=uuid5(ANNA, "attendance"),
        aggregate_version=version,
        occurred_at=AT,
        actor_id=UUID(TUTOR),
        actor_role=Role.TEACHER,
        student_id=ANNA,
        session_id=session_id,
        absences_in_a_row=streak,
        sessions=sessions,
    )


AUDIENCE = Audience(time_zone="Australia/Sydney", staff=(SUPERVISOR, ADMIN), student_name="Anna")


def test_repeated_absences_tell_the_centres_supervisors_and_admins_from_the_event_alone() -> None:
    told = notifications_for(noticed(2), AUDIENCE)
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
    assert first.source_event == "RepeatedAbsencesNoticed"
    third = notifications_for(noticed(3), AUDIENCE)
    assert third[0].body.endswith("and from the 2 sessions marked before it.")


def test_an_earlier_session_marked_late_says_it_is_one_of_the_run() -> None:
    (told, _) = notifications_for(noticed(3, newest=False), AUDIENCE)
    assert told.title == "Anna has missed 3 sessions in a row"
    assert told.body == (
        "Anna was absent from Fractions clinic on Sun 6 Apr 2025, 09:30 AEST, "
        "one of 3 sessions in a row they missed."
    )


def test_a_run_as_long_as_the_record_keeps_may_be_longer() -> None:
    (told, _) = notifications_for(noticed(ev.ATTENDANCE_RECORD_SESSIONS), AUDIENCE)
    assert told.title == (
        f"Anna has missed {ev.ATTENDANCE_RECORD_SESSIONS} or more sessions in a row"
    )
    assert told.body.endswith(
        f"and from the {ev.ATTENDANCE_RECORD_SESSIONS - 1} or more sessions marked before it."
    )


def test_the_same_notice_seen_again_has_the_same_ids_and_another_one_new_ids() -> None:
    first = notifications_for(noticed(2), AUDIENCE)
    again = notifications_for(noticed(2), AUDIENCE)
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    assert len({n.notification_id for n in first}) == 2
    later = notifications_for(noticed(3, version=6, session_id=uuid4()), AUDIENCE)
    assert not {n.notification_id for n in later} & {n.notification_id for n in first}


def test_a_mark_itself_tells_nobody() -> None:
    assert ev.AttendanceMarked not in NOTIFYING_EVENTS
    assert ev.StudentAttendanceRecorded not in NOTIFYING_EVENTS
    mark = ev.AttendanceMarked(
        centre_id="sydney",
        aggregate_id=uuid5(SESSION_ID, str(ANNA)),
        aggregate_version=5,
        occurred_at=AT,
        actor_id=UUID(TUTOR),
        actor_role=Role.TEACHER,
        session_id=SESSION_ID,
        student_id=ANNA,
        status=ev.AttendanceStatus.ABSENT,
    )
    assert notifications_for(mark, AUDIENCE) == []


class Docs:
    def __init__(self, *docs: tuple[Kind[Any], str, Document]) -> None:
        self._docs = {(kind.name, key): doc for kind, key, doc in docs}
        self.read: list[str] = []

    def get(self, kind: Kind[Any], key: str) -> Any:
        self.read.append(kind.name)
        return self._docs.get((kind.name, key))


def test_the_audience_reads_only_the_centre_and_the_student_never_other_sessions() -> None:
    docs = Docs(
        (
            CENTRE,
            "sydney",
            Centre(centre_id="sydney", name="S", time_zone="Australia/Sydney", help_sla_minutes={}),
        ),
        (CENTRE_STAFF, "sydney", CentreStaff(centre_id="sydney", staff=[SUPERVISOR])),
        (PERSON, str(ANNA), Person(person_id=str(ANNA), name="Anna", role=Role.STUDENT)),
    )
    found = audience_of(noticed(2), docs)
    assert (found.student_name, found.staff, found.time_zone) == (
        "Anna",
        (SUPERVISOR,),
        "Australia/Sydney",
    )
    assert set(docs.read) == {CENTRE.name, CENTRE_STAFF.name, PERSON.name}
    (told,) = notifications_for(noticed(2), found)
    assert told.person_id == SUPERVISOR
