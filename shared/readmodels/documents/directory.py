"""The ``centre`` and ``person`` documents: who and where."""

from __future__ import annotations

from msgspec import UNSET, UnsetType

from shared.readmodels.documents.base import Document
from shared.tenancy.roles import Role


class Centre(Document, kw_only=True):
    """One per centre."""

    centre_id: str
    name: str
    time_zone: str
    help_sla_minutes: dict[str, int]
    """Minutes a help request of each priority may wait."""
    max_session_minutes: int | UnsetType = UNSET
    """The longest session, once the centre set one."""


class Person(Document, kw_only=True):
    """One per person."""

    person_id: str
    name: str
    role: Role
    guardian_id: str | None = None
