"""Centres and the people who belong to them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, Text
from shared.events import HelpPriority
from shared.tenancy import Role

SlaMinutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]


class RegisterCentre(Command, frozen=True):
    centre_id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
    name: Text
    time_zone: Text = "Australia/Sydney"
    help_sla_minutes: dict[HelpPriority, SlaMinutes] | None = None


class ChangeHelpSlas(Command, frozen=True):
    centre_id: str
    help_sla_minutes: Annotated[dict[HelpPriority, SlaMinutes], msgspec.Meta(min_length=1)]


class ChangeSessionLength(Command, frozen=True):
    centre_id: str
    max_session_minutes: Annotated[int, msgspec.Meta(ge=15, le=1440)]


class RegisterPerson(Command, frozen=True):
    name: Text
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    role: Role
    guardian_id: UUID | None = None
