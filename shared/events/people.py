from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shared.events.base import Event
from shared.tenancy.roles import Role


class PersonRegistered(Event, frozen=True, kw_only=True):
    name: str
    email: str
    role: Role
    guardian_id: UUID | None = None
    """For a STUDENT: the PARENT who may follow their attendance and catch-ups."""

    aggregate_kind: ClassVar[str] = "person"
