"""Loading rules several aggregates' handlers share: whose session it is, whose seat."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID

from services.command.domain.aggregate import InvalidValue, NotFound
from services.command.domain.directory import Person
from services.command.domain.seat import Seat, seat_id
from services.command.domain.session import Session
from services.command.unit_of_work import UnitOfWork
from shared.tenancy import Forbidden, Role

TUTOR_ROLES = frozenset({Role.TEACHER, Role.CENTER_SUPERVISOR})


def session_run_by(uow: UnitOfWork, session_id: UUID) -> Session:
    """A session of the actor's centre that the actor may run: a TEACHER only their own."""
    session = uow.find(Session, session_id)
    if uow.actor.is_teacher_other_than(session.tutor_id):
        raise Forbidden("a TEACHER may act only on their own sessions")
    return session


def seat(uow: UnitOfWork, session: Session, student_id: UUID) -> Seat:
    """A student's seat in the session (one that has recorded nothing yet, the first time)."""
    return uow.get_or_start(
        Seat, seat_id(session.id, student_id), lambda: Seat.of(session, student_id)
    )


def seat_holding(
    uow: UnitOfWork,
    session: Session,
    students: Iterable[UUID],
    holds: Callable[[Seat], bool],
    missing: str,
) -> Seat:
    """The seat of one of ``students`` in the session for which ``holds`` is true."""
    for student_id in students:
        found = seat(uow, session, student_id)
        if holds(found):
            return found
    raise NotFound(missing)


def tutor(uow: UnitOfWork, person_id: UUID, *, field: str = "teacher_id") -> Person:
    """Someone of the actor's centre who teaches, named by the command's ``field``."""
    person = uow.find(Person, person_id, field=field)
    if person.role not in TUTOR_ROLES:
        raise InvalidValue("must name a TEACHER or CENTER_SUPERVISOR", field=field)
    return person


def student(uow: UnitOfWork, person_id: UUID, *, field: str, refusal: str) -> Person:
    """A STUDENT of the actor's centre, named by the command's ``field``; anyone else is
    refused with ``refusal``."""
    person = uow.find(Person, person_id, field=field)
    if person.role is not Role.STUDENT:
        raise InvalidValue(refusal, field=field)
    return person
