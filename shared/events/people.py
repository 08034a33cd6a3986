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


class PersonDataErased(Event, frozen=True, kw_only=True):
    """A CENTER_ADMIN erased a person's personal data (a right-to-erasure request): their data
    key was destroyed, so every text sealed with it (their name and e-mail, notes, messages and
    answers about them) reads as erased in every copy. Ids, times, counts and the log's order
    stay. ``reason`` is the centre's record of why (it must not itself name the person);
    ``key_id`` is the destroyed key's id (``None``: the person never had one)."""

    reason: str
    key_id: str | None = None

    aggregate_kind: ClassVar[str] = "person"
