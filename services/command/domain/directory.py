"""Centres (tenants) and the people who belong to them."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from services.command.domain import values
from services.command.domain.aggregate import Aggregate, InvalidValue, applies
from services.command.domain.session import LONGEST_SESSION, known_time_zone
from shared.events import (
    HELP_SLA_MINUTES,
    REMINDER_MINUTES,
    SESSION_MINUTES,
    SESSION_REMINDER_MINUTES,
    CentreHelpSlasChanged,
    CentreRegistered,
    CentreRemindersChanged,
    CentreSessionLengthChanged,
    HelpPriority,
    PersonDataErased,
    PersonRegistered,
)
from shared.tenancy import Actor, Role, is_valid_centre_id
from shared.tenancy.identity import DIRECTORY, centre_aggregate_id, person_id

__all__ = ["DIRECTORY", "Centre", "Person", "centre_aggregate_id", "person_id"]

DEFAULT_HELP_SLA_MINUTES = {
    HelpPriority.URGENT: 2,
    HelpPriority.HIGH: 5,
    HelpPriority.MEDIUM: 10,
    HelpPriority.LOW: 20,
}

"""How long a centre may let its sessions last, at the least and at the most."""


class Centre(Aggregate):
    name: str
    time_zone: str
    help_sla_minutes: dict[str, int]
    max_session_minutes: int
    session_reminder_minutes: int

    @classmethod
    def register(
        cls,
        centre_id: str,
        *,
        by: Actor,
        name: str,
        time_zone: str,
        help_sla_minutes: dict[str, int] | None = None,
    ) -> Centre:
        if not is_valid_centre_id(centre_id):
            raise InvalidValue(
                "a centre id is lower-case letters, digits and '-' (at most 64)", field="centre_id"
            )
        name = values.text(name, "name", values.TITLE, what="centre's name")
        time_zone = known_time_zone(time_zone)
        values.at_most(help_sla_minutes or {}, "help_sla_minutes", len(HelpPriority), "priorities")
        slas = _valid_slas(
            {p.value: m for p, m in DEFAULT_HELP_SLA_MINUTES.items()} | (help_sla_minutes or {})
        )
        centre = cls(centre_aggregate_id(centre_id), centre_id)
        centre._record(CentreRegistered, by, name=name, time_zone=time_zone, help_sla_minutes=slas)
        return centre

    def help_sla_minutes_for(self, priority: HelpPriority) -> int:
        return self.help_sla_minutes[priority.value]

    @property
    def longest_session(self) -> timedelta:
        """How long a session of this centre may last."""
        return timedelta(minutes=self.max_session_minutes)

    def change_max_session_length(self, minutes: int, *, by: Actor) -> bool:
        """Change how long a session may last; ``False`` if that is the length already."""
        values.whole(minutes, "max_session_minutes", *SESSION_MINUTES, unit=" minutes")
        if minutes == self.max_session_minutes:
            return False
        self._record(
            CentreSessionLengthChanged,
            by,
            max_session_minutes=minutes,
            previous_minutes=self.max_session_minutes,
        )
        return True

    def change_reminders(self, session_reminder_minutes: int, *, by: Actor) -> bool:
        """How many minutes before a session starts its people are reminded; ``False`` if that
        is the lead time already."""
        minutes = session_reminder_minutes
        values.whole(minutes, "session_reminder_minutes", *REMINDER_MINUTES, unit=" minutes")
        if minutes == self.session_reminder_minutes:
            return False
        self._record(
            CentreRemindersChanged,
            by,
            session_reminder_minutes=minutes,
            previous_minutes=self.session_reminder_minutes,
        )
        return True

    def change_help_slas(self, minutes: dict[str, int], *, by: Actor) -> bool:
        """Change the minutes of some priorities; ``False`` if nothing changes."""
        values.at_most(minutes, "help_sla_minutes", len(HelpPriority), "priorities")
        slas = _valid_slas(self.help_sla_minutes | minutes)
        if slas == self.help_sla_minutes:
            return False
        self._record(
            CentreHelpSlasChanged, by, help_sla_minutes=slas, previous_minutes=self.help_sla_minutes
        )
        return True

    def _blank(self) -> None:
        self.max_session_minutes = int(LONGEST_SESSION.total_seconds() // 60)
        self.session_reminder_minutes = SESSION_REMINDER_MINUTES

    @applies(CentreRegistered)
    def _registered(self, event: CentreRegistered) -> None:
        self.name = event.name
        self.time_zone = event.time_zone
        self.help_sla_minutes = dict(event.help_sla_minutes)

    @applies(CentreSessionLengthChanged)
    def _session_length_changed(self, event: CentreSessionLengthChanged) -> None:
        self.max_session_minutes = event.max_session_minutes

    @applies(CentreRemindersChanged)
    def _reminders_changed(self, event: CentreRemindersChanged) -> None:
        self.session_reminder_minutes = event.session_reminder_minutes

    @applies(CentreHelpSlasChanged)
    def _slas_changed(self, event: CentreHelpSlasChanged) -> None:
        self.help_sla_minutes = dict(event.help_sla_minutes)


def _valid_slas(slas: dict[str, int]) -> dict[str, int]:
    if set(slas) != {p.value for p in HelpPriority} or not all(
        isinstance(m, int)
        and not isinstance(m, bool)
        and HELP_SLA_MINUTES.low <= m <= HELP_SLA_MINUTES.high
        for m in slas.values()
    ):
        raise InvalidValue(
            f"help SLAs are {HELP_SLA_MINUTES.low} to {HELP_SLA_MINUTES.high} whole minutes "
            "for LOW, MEDIUM, HIGH, URGENT",
            field="help_sla_minutes",
        )
    return slas


class Person(Aggregate):
    name: str
    """Sealed where the command service seals personal data, as is :attr:`email`."""
    email: str
    role: Role
    guardian_id: UUID | None
    erasure: PersonDataErased | None
    """The erasure of the person's personal data, once it was recorded."""

    @classmethod
    def register(
        cls,
        *,
        by: Actor,
        name: str,
        email: str,
        role: Role,
        guardian: Person | None = None,
    ) -> Person:
        name = values.text(name, "name", values.TITLE, what="person's name")
        email = values.text(email, "email", 254, what="e-mail address").lower()
        if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
            raise InvalidValue("not an e-mail address", field="email")
        if role is Role.SYSTEM:
            raise InvalidValue("SYSTEM is not a role a person can have", field="role")
        if role is Role.SUPER_ADMIN and not by.is_super_admin:
            raise InvalidValue("only a SUPER_ADMIN can register a SUPER_ADMIN", field="role")
        if guardian is not None:
            if role is not Role.STUDENT:
                raise InvalidValue("only a student has a guardian", field="guardian_id")
            if guardian.role is not Role.PARENT or guardian.centre_id != by.centre_id:
                raise InvalidValue(
                    "the guardian must be a PARENT of this centre", field="guardian_id"
                )
        person = cls(person_id(by.centre_id, email), by.centre_id)
        person._record(
            PersonRegistered,
            by,
            name=name,
            email=email,
            role=role,
            guardian_id=guardian.id if guardian else None,
        )
        return person

    def record_erasure(
        self, *, by: Actor, reason: str, key_id: str | None, at: datetime
    ) -> PersonDataErased:
        """Record that the person's data key was destroyed (``at``, by the key store): the
        audit event of the erasure. Once only: the first erasure is the one recorded."""
        if self.erasure is not None:
            return self.erasure
        return self._record(PersonDataErased, by, at=at, reason=reason, key_id=key_id)

    def _blank(self) -> None:
        self.erasure = None

    @applies(PersonDataErased)
    def _erased(self, event: PersonDataErased) -> None:
        self.erasure = event

    @applies(PersonRegistered)
    def _registered(self, event: PersonRegistered) -> None:
        self.name = event.name
        self.email = event.email
        self.role = event.role
        self.guardian_id = event.guardian_id
