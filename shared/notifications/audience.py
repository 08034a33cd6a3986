"""What the read side knows about the people an event concerns, as an :class:`Audience`."""

from __future__ import annotations

from typing import Protocol, TypeVar

from shared import events as ev
from shared.notifications.model import Audience
from shared.readmodels.documents import (
    CENTRE,
    CENTRE_STAFF,
    HOMEWORK,
    PERSON,
    SESSION,
    STUDENT,
    Document,
    Kind,
    Student,
)
from shared.readmodels.times import iso, parse
from shared.readmodels.views.risk import absences_as_of

D = TypeVar("D", bound=Document)


class Documents(Protocol):
    """Reads read-model documents of the event's centre by kind and key (a projector batch,
    or :class:`StoreDocuments` over the read store)."""

    def get(self, kind: Kind[D], key: str) -> D | None: ...


def audience_of(event: ev.Event, docs: Documents) -> Audience:
    """Who ``event`` concerns: its session's tutor and enrolled students, their parents, the
    centre's supervisors and admins, and the centre's time zone; for an absence, the absences
    in a row it is part of."""
    centre = docs.get(CENTRE, event.centre_id)
    staff = docs.get(CENTRE_STAFF, event.centre_id)
    session = (
        docs.get(SESSION, str(event.session_id))
        if isinstance(event, ev.SessionScopedEvent)
        else None
    )
    homework_id = getattr(event, "homework_id", None)
    homework = docs.get(HOMEWORK, str(homework_id)) if homework_id is not None else None
    students: list[str] = []
    if session is not None:
        students = sorted(s for s, seat in session.students.items() if seat.enrolled)
    concerned = list(students)
    student_id = getattr(event, "student_id", None)
    if student_id is not None and str(student_id) not in concerned:
        concerned.append(str(student_id))
    parents: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for student in concerned:
        person = docs.get(PERSON, student)
        if person is not None:
            names[student] = person.name
            if person.guardian_id:
                parents[student] = (person.guardian_id,)
    absences: list[str] = []
    if (
        isinstance(event, ev.AttendanceMarked)
        and event.status is ev.AttendanceStatus.ABSENT
        and session is not None
    ):
        absences = _absences(event, docs, session.starts_at)
    return Audience(
        time_zone=centre.time_zone if centre is not None else "UTC",
        session_title=session.title if session is not None else None,
        session_starts_at=parse(session.starts_at) if session is not None else None,
        tutor_id=session.tutor_id if session is not None else None,
        student_ids=tuple(students),
        parents=parents,
        staff=tuple(staff.staff) if staff is not None else (),
        homework_title=homework.title if homework is not None else None,
        student_name=names.get(str(student_id)) if student_id is not None else None,
        absences_in_a_row=tuple(absences),
    )


def _absences(event: ev.AttendanceMarked, docs: Documents, starts_at: str) -> list[str]:
    """The absences in a row this one is part of, as they stood when it was marked (when each
    other session's mark was made is in its session document)."""
    student_id = str(event.student_id)
    student = docs.get(STUDENT, student_id) or Student(
        student_id=student_id, centre_id=event.centre_id
    )

    def marked_at(session_id: str) -> str | None:
        session = docs.get(SESSION, session_id)
        seat = session.students.get(student_id) if session is not None else None
        return seat.marked_at if seat is not None else None

    return absences_as_of(
        student, str(event.session_id), starts_at, iso(event.occurred_at), marked_at
    )
