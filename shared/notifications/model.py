"""What a notification is, and what the read side knows about whom to tell."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID, uuid5

import msgspec


class NotificationType(StrEnum):
    """What a notification is about; a person's preferences choose channels per type."""

    SESSION_REMINDER = "SESSION_REMINDER"
    ATTENDANCE_REMINDER = "ATTENDANCE_REMINDER"
    HELP_REQUEST_ESCALATED = "HELP_REQUEST_ESCALATED"
    CATCH_UP_REMINDER = "CATCH_UP_REMINDER"
    CATCH_UP_OVERDUE = "CATCH_UP_OVERDUE"
    HOMEWORK_REMINDER = "HOMEWORK_REMINDER"
    HOMEWORK_OVERDUE = "HOMEWORK_OVERDUE"
    SESSION_CANCELLED = "SESSION_CANCELLED"
    STUDENT_AT_RISK = "STUDENT_AT_RISK"
    SESSION_AUTO_COMPLETED = "SESSION_AUTO_COMPLETED"
    PAPER_HANDED_BACK = "PAPER_HANDED_BACK"


class NotificationPriority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


NOTIFICATION_NAMESPACE: Final = UUID("6f1d3c52-4a8e-5b7e-9c0d-2e1f4a6b8c90")
"""The namespace of notification ids (uuid5)."""


def notification_id(source: str, person_id: str) -> str:
    """The id of the notification ``source`` (an event's aggregate id and version) causes for
    ``person_id``: the same every time the event is seen, so a redelivery never tells twice."""
    return str(uuid5(NOTIFICATION_NAMESPACE, f"{source}/{person_id}"))


class Notification(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One person told one thing."""

    notification_id: str
    centre_id: str
    person_id: str
    type: NotificationType
    priority: NotificationPriority
    title: str
    body: str
    link: str
    """A path of the query API where the person reads more."""
    at: str
    """When it happened: ISO 8601 in UTC with a ``Z`` (the event's time)."""
    source_event: str
    """The type of the event that caused it."""


@dataclass(frozen=True)
class Audience:
    """What the read side knows about the people an event concerns."""

    time_zone: str
    """The centre's IANA time zone (times in titles and bodies are rendered in it)."""
    session_title: str | None = None
    tutor_id: str | None = None
    student_ids: tuple[str, ...] = ()
    """The session's enrolled students."""
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each student's parents (guardians), by student id."""
    staff: tuple[str, ...] = ()
    """The centre's supervisors and admins."""
    session_starts_at: datetime | None = None
    homework_title: str | None = None
    student_name: str | None = None
    """The name of the student the event is about, if it is about one."""
