"""Centres and the people who belong to them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, Reason, Text
from shared.events import HELP_SLA_MINUTES, REMINDER_MINUTES, SESSION_MINUTES, HelpPriority
from shared.tenancy import Role
from shared.tenancy.actor import CENTRE_ID_PATTERN

SlaMinutes = Annotated[int, msgspec.Meta(ge=HELP_SLA_MINUTES.low, le=HELP_SLA_MINUTES.high)]


class RegisterCentre(Command, frozen=True):
    centre_id: Annotated[str, msgspec.Meta(pattern=CENTRE_ID_PATTERN)]
    name: Text
    time_zone: Text = "Australia/Sydney"
    help_sla_minutes: dict[HelpPriority, SlaMinutes] | None = None


class ChangeHelpSlas(Command, frozen=True):
    centre_id: str
    help_sla_minutes: Annotated[dict[HelpPriority, SlaMinutes], msgspec.Meta(min_length=1)]


class ChangeSessionLength(Command, frozen=True):
    centre_id: str
    max_session_minutes: Annotated[
        int, msgspec.Meta(ge=SESSION_MINUTES.low, le=SESSION_MINUTES.high)
    ]


class ChangeReminders(Command, frozen=True):
    centre_id: str
    session_reminder_minutes: Annotated[
        int, msgspec.Meta(ge=REMINDER_MINUTES.low, le=REMINDER_MINUTES.high)
    ]


class RegisterPerson(Command, frozen=True):
    name: Text
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    role: Role
    guardian_id: UUID | None = None


class ErasePersonData(Command, frozen=True):
    """Erase a person's personal data (a right-to-erasure request): their data key is
    destroyed, so their name, e-mail and every text about them read as erased everywhere.
    ``reason`` is the centre's record of why, kept readable in the log: it must not name the
    person."""

    person_id: UUID
    reason: Reason
