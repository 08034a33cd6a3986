"""Events of a person's inbox (what they read, how they want to be told) and of a centre's
notification channels."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from shared.events.base import Event


class NotificationChannel(StrEnum):
    """Where a notification goes besides the inbox."""

    WEBHOOK = "WEBHOOK"
    EMAIL = "EMAIL"


class NotificationsRead(Event, frozen=True, kw_only=True):
    """The person read these notifications. The aggregate is their inbox,
    uuid5(person, "inbox")."""

    person_id: UUID
    notification_ids: list[UUID]

    aggregate_kind: ClassVar[str] = "inbox"


class AllNotificationsRead(Event, frozen=True, kw_only=True):
    """The person marked every notification up to ``up_to`` read."""

    person_id: UUID
    up_to: datetime

    aggregate_kind: ClassVar[str] = "inbox"


class NotificationPreferencesSet(Event, frozen=True, kw_only=True):
    """Which types of notification reach the person by which channel besides the inbox (a
    type not named reaches no other channel)."""

    person_id: UUID
    channels: dict[str, list[NotificationChannel]]

    aggregate_kind: ClassVar[str] = "inbox"


class NotificationChannelsConfigured(Event, frozen=True, kw_only=True):
    """The centre's channels: a webhook (URL and the secret its bodies are signed with; no
    webhook when ``webhook_url`` is None) and whether e-mail is sent. The aggregate is
    uuid5(centre aggregate, "notification-channels"). The secret is never shown by a read."""

    webhook_url: str | None = None
    webhook_secret: str | None = None
    email_enabled: bool = False

    aggregate_kind: ClassVar[str] = "centre"
