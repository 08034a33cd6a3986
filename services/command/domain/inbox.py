"""A person's inbox (what they read, how they want to be told) and a centre's notification
channels (where notifications go besides the inbox)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from services.command.domain import values
from services.command.domain.aggregate import Aggregate, InvalidValue, applies
from shared.events.notifications import (
    AllNotificationsRead,
    NotificationChannel,
    NotificationChannelsConfigured,
    NotificationPreferencesSet,
    NotificationsRead,
)
from shared.notifications import NotificationType
from shared.tenancy import Actor
from shared.tenancy.identity import centre_aggregate_id

MAX_URL = 500
SECRET_LENGTH = (16, 200)
"""The shortest and longest webhook secret (characters)."""


def inbox_id(person_id: UUID) -> UUID:
    return uuid5(person_id, "inbox")


def channels_id(centre_id: str) -> UUID:
    return uuid5(centre_aggregate_id(centre_id), "notification-channels")


class Inbox(Aggregate):
    """One per person, uuid5(person, "inbox"): only its person writes it."""

    person_id: UUID
    read_up_to: datetime | None
    preferences: dict[str, list[NotificationChannel]]

    @classmethod
    def of(cls, person_id: UUID, centre_id: str) -> Inbox:
        inbox = cls(inbox_id(person_id), centre_id)
        inbox.person_id = person_id
        return inbox

    def mark_read(self, notification_ids: list[UUID], *, by: Actor) -> None:
        self._record(
            NotificationsRead,
            by,
            person_id=self.person_id,
            notification_ids=list(dict.fromkeys(notification_ids)),
        )

    def mark_all_read(self, up_to: datetime, *, by: Actor) -> bool:
        """Everything up to ``up_to`` read; ``False`` (nothing recorded) if it already was."""
        values.moment(up_to, "up_to")
        if self.read_up_to is not None and up_to <= self.read_up_to:
            return False
        self._record(AllNotificationsRead, by, person_id=self.person_id, up_to=up_to)
        return True

    def set_preferences(
        self, channels: dict[NotificationType, list[NotificationChannel]], *, by: Actor
    ) -> bool:
        """Which types reach which channels; ``False`` (nothing recorded) if unchanged."""
        wanted = {
            str(kind): sorted(set(chosen)) for kind, chosen in sorted(channels.items()) if chosen
        }
        if wanted == self.preferences:
            return False
        self._record(NotificationPreferencesSet, by, person_id=self.person_id, channels=wanted)
        return True

    def _blank(self) -> None:
        self.read_up_to = None
        self.preferences = {}

    @applies(NotificationsRead)
    def _read(self, event: NotificationsRead) -> None:
        self.person_id = event.person_id

    @applies(AllNotificationsRead)
    def _all_read(self, event: AllNotificationsRead) -> None:
        self.person_id, self.read_up_to = event.person_id, event.up_to

    @applies(NotificationPreferencesSet)
    def _preferences(self, event: NotificationPreferencesSet) -> None:
        self.person_id, self.preferences = event.person_id, dict(event.channels)


class NotificationChannels(Aggregate):
    """One per centre: its webhook and whether it sends e-mail. Its admins configure it."""

    webhook_url: str | None
    webhook_secret: str | None
    email_enabled: bool

    @classmethod
    def of(cls, centre_id: str) -> NotificationChannels:
        return cls(channels_id(centre_id), centre_id)

    def configure(
        self,
        *,
        by: Actor,
        webhook_url: str | None,
        webhook_secret: str | None,
        email_enabled: bool,
    ) -> bool:
        """Set the channels; a webhook keeps its secret when none is sent. ``False`` (nothing
        recorded) if nothing changed."""
        if webhook_url is not None:
            webhook_url = _webhook_url(webhook_url)
            if webhook_secret is None and webhook_url == self.webhook_url:
                webhook_secret = self.webhook_secret
            if webhook_secret is None:
                raise InvalidValue(
                    "a webhook needs a secret to sign its bodies with", field="webhook_secret"
                )
            low, high = SECRET_LENGTH
            if not low <= len(webhook_secret) <= high:
                raise InvalidValue(
                    f"a webhook secret has {low} to {high} characters", field="webhook_secret"
                )
        else:
            webhook_secret = None
        if (webhook_url, webhook_secret, email_enabled) == (
            self.webhook_url,
            self.webhook_secret,
            self.email_enabled,
        ):
            return False
        self._record(
            NotificationChannelsConfigured,
            by,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            email_enabled=email_enabled,
        )
        return True

    def _blank(self) -> None:
        self.webhook_url = self.webhook_secret = None
        self.email_enabled = False

    @applies(NotificationChannelsConfigured)
    def _configured(self, event: NotificationChannelsConfigured) -> None:
        self.webhook_url, self.webhook_secret = event.webhook_url, event.webhook_secret
        self.email_enabled = event.email_enabled


def _webhook_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("a webhook URL is an http or https URL", field="webhook_url")
    if len(url) > MAX_URL:
        raise InvalidValue(f"a webhook URL has at most {MAX_URL} characters", field="webhook_url")
    return url.strip()
