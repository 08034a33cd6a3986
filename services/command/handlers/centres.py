"""Centres (tenants) and the people who belong to them."""

from __future__ import annotations

from datetime import timedelta

from services.command.commands.centres import (
    ChangeHelpSlas,
    ChangeReminders,
    ChangeSessionLength,
    ErasePersonData,
    RegisterCentre,
    RegisterPerson,
)
from services.command.domain import values
from services.command.domain.aggregate import NotFound, RuleViolated
from services.command.domain.directory import Centre, Person, centre_aggregate_id
from services.command.responses import (
    CentreView,
    ErasureView,
    HelpSlasView,
    PersonView,
    RemindersView,
    SessionLengthView,
    WithStatus,
    time,
)
from services.command.unit_of_work import UnitOfWork


def register_centre(command: RegisterCentre, uow: UnitOfWork) -> CentreView:
    slas = command.help_sla_minutes
    centre = Centre.register(
        command.centre_id,
        by=uow.actor,
        name=command.name,
        time_zone=command.time_zone,
        help_sla_minutes=None if slas is None else {str(p): m for p, m in slas.items()},
    )
    uow.add(centre, if_exists="the centre already exists")
    return CentreView(centre_id=command.centre_id)


def _own_centre(
    command: ChangeHelpSlas | ChangeSessionLength | ChangeReminders, uow: UnitOfWork
) -> Centre:
    """The actor's centre, to change (its own copy, never the cached one)."""
    if command.centre_id != uow.actor.centre_id:
        raise NotFound(f"centre {command.centre_id!r} is not registered")
    return uow.get(Centre, centre_aggregate_id(uow.actor.centre_id))


def change_help_slas(command: ChangeHelpSlas, uow: UnitOfWork) -> HelpSlasView:
    centre = _own_centre(command, uow)
    minutes = {str(p): m for p, m in command.help_sla_minutes.items()}
    changed = centre.change_help_slas(minutes, by=uow.actor)
    return HelpSlasView(
        centre_id=command.centre_id, help_sla_minutes=centre.help_sla_minutes, changed=changed
    )


def change_max_session_length(command: ChangeSessionLength, uow: UnitOfWork) -> SessionLengthView:
    """How long a session of the centre may last, from now on (sessions already booked keep
    their times)."""
    centre = _own_centre(command, uow)
    changed = centre.change_max_session_length(command.max_session_minutes, by=uow.actor)
    return SessionLengthView(
        centre_id=command.centre_id, max_session_minutes=centre.max_session_minutes, changed=changed
    )


def change_reminders(command: ChangeReminders, uow: UnitOfWork) -> RemindersView:
    """How many minutes before a session starts its people are reminded, from now on
    (reminders not sent yet follow it)."""
    centre = _own_centre(command, uow)
    changed = centre.change_reminders(command.session_reminder_minutes, by=uow.actor)
    return RemindersView(
        centre_id=command.centre_id,
        session_reminder_minutes=centre.session_reminder_minutes,
        changed=changed,
    )


def register_person(command: RegisterPerson, uow: UnitOfWork) -> PersonView:
    uow.centre()
    guardian = None
    if command.guardian_id is not None:
        guardian = uow.find(Person, command.guardian_id, field="guardian_id")
    person = Person.register(
        by=uow.actor, name=command.name, email=command.email, role=command.role, guardian=guardian
    )
    uow.add(person, if_exists="someone with this e-mail is already registered")
    return PersonView(person_id=person.id, role=command.role)


def erase_person_data(command: ErasePersonData, uow: UnitOfWork) -> WithStatus[ErasureView]:
    """Destroy the person's data key first (from then on nothing sealed with it opens, and
    nothing new about them is recorded), then record the erasure on the person: the audit
    event. Erasing again answers the first erasure (200). Should the record fail after the
    key is gone, erasing again records it, with the first erasure's time."""
    reason = values.reason(command.reason)
    privacy = uow.services.privacy
    if privacy is None:
        raise RuleViolated("personal data is not sealed by this service: nothing to erase")
    person = uow.get(Person, command.person_id)
    if person.centre_id != uow.actor.centre_id:
        raise NotFound("no such person")
    status = 200
    if person.erasure is None:
        erased = privacy.keys.destroy(
            person.centre_id, person.id, erased_by=uow.actor.user_id, reason=reason
        )
        privacy.erasures.note_erased(person.centre_id, person.id)  # their tokens stop here now
        person.record_erasure(
            by=uow.actor, reason=erased.reason, key_id=erased.key_id, at=erased.erased_at
        )
        status = 201
    erasure = person.erasure
    assert erasure is not None
    return WithStatus(
        ErasureView(
            person_id=person.id,
            erased_at=time(erasure.occurred_at),
            key_id=erasure.key_id,
            everywhere_by=time(erasure.occurred_at + timedelta(seconds=privacy.key_cache_seconds)),
        ),
        status,
    )
