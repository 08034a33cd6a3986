"""The ``centre`` and ``person`` documents: who and where."""

from __future__ import annotations

from msgspec import UNSET, UnsetType

from shared.readmodels.documents.base import Document, Instant
from shared.tenancy.roles import Role


class Centre(Document, kw_only=True):
    """One per centre."""

    centre_id: str
    help_sla_minutes: dict[str, int]
    """Minutes a help request of each priority may wait."""
    max_session_minutes: int | UnsetType = UNSET
    """The longest session, once the centre set one."""
    name: str
    time_zone: str


class Person(Document, kw_only=True):
    """One per person."""

    erased: bool | UnsetType = UNSET
    """``True`` once a CENTER_ADMIN erased the person's personal data (``PersonDataErased``)."""
    erased_at: Instant | UnsetType = UNSET
    guardian_id: str | None = None
    name: str
    """Sealed (opened where it leaves tutorpulse); ``"[erased]"`` once the person was erased."""
    person_id: str
    role: Role
