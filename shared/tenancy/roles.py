from enum import StrEnum
from typing import Final
from uuid import NAMESPACE_URL, uuid5


class Role(StrEnum):
    SUPER_ADMIN = "SUPER_ADMIN"
    CENTER_ADMIN = "CENTER_ADMIN"
    CENTER_SUPERVISOR = "CENTER_SUPERVISOR"
    FINANCE_ADMIN = "FINANCE_ADMIN"
    TEACHER = "TEACHER"
    PARENT = "PARENT"
    STUDENT = "STUDENT"
    SYSTEM = "SYSTEM"
    """Not a person: what the scheduler acts as when a timer fires. No token carries it and
    nobody is registered with it; it holds only the timer permissions."""


PEOPLE_ROLES: Final = frozenset(role for role in Role if role is not Role.SYSTEM)
"""The seven roles a person may have (every role but SYSTEM)."""

STAFF_WHO_RUN_SESSIONS = frozenset({Role.CENTER_ADMIN, Role.CENTER_SUPERVISOR, Role.TEACHER})

SYSTEM_ACTOR_ID: Final = uuid5(NAMESPACE_URL, "tutorpulse:system")
"""The actor id of everything SYSTEM records (``ad1248f3-bfe2-5f0b-8c80-1aae3462cebe``)."""
