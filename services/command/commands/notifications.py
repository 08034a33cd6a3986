"""A person's notifications (marking them read, choosing channels) and a centre's channels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command
from shared.events.notifications import NotificationChannel
from shared.notifications import NotificationType

MARK_AT_ONCE = 200
"""The most notifications marked read by one command."""


class MarkNotificationsRead(Command, frozen=True):
    notification_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MARK_AT_ONCE)]


class MarkAllNotificationsRead(Command, frozen=True):
    up_to: datetime | None = None
    """Omitted: now."""


class SetNotificationPreferences(Command, frozen=True):
    channels: dict[
        NotificationType,
        Annotated[list[NotificationChannel], msgspec.Meta(max_length=len(NotificationChannel))],
    ]
    """Per type, the channels besides the inbox (a type not named: the inbox only)."""


class ConfigureNotificationChannels(Command, frozen=True):
    centre_id: str
    webhook_url: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    """Omitted: no webhook."""
    webhook_secret: Annotated[str, msgspec.Meta(min_length=16, max_length=200)] | None = None
    """The key bodies are signed with (HMAC-SHA256); omitted: the webhook's current one."""
    email_enabled: bool = False
