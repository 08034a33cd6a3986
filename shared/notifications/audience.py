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
    Document,
    Kind,
)
from shared.readmodels.times import parse

D = TypeVar("D", bound=Document)


class Documents(Protocol):
    """Reads read-model documents of the event's centre by kind and key (a projector batch,
    or :class:`StoreDocuments` over the read store)."""

    def get(self, kind: Kind[D], key: str) -> D | None: ...


def audience_of(event: ev.Event, docs: Documents) -> Audience:
    """Who ``event`` concerns: its session's tutor and enrolled students, their parents, the
    centre's supervisors and admins, and the centre's time zone."""
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
    )
