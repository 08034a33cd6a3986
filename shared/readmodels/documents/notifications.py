"""The ``inbox`` document (a person's notifications), the ``centre_staff`` document (whom a
centre's escalations go to), the ``contact`` document (where a person's e-mail goes) and the
``notification_channels`` document (where a centre's notifications go)."""

from __future__ import annotations

import msgspec

from shared.events.notifications import NotificationChannel
from shared.notifications.model import NotificationPriority, NotificationType
from shared.readmodels.documents.base import Document, Instant, Record

INBOX_LIMIT = 500
"""Notifications an inbox keeps, newest first; older ones drop off the end."""


class InboxItem(Record, kw_only=True):
    """One notification as its person's inbox holds it."""

    at: Instant
    body: str
    link: str
    notification_id: str
    priority: NotificationPriority
    read: bool = False
    title: str
    type: NotificationType


class Inbox(Document, kw_only=True):
    """One per person who was ever told something or marked something read."""

    centre_id: str
    items: list[InboxItem] = msgspec.field(default_factory=list)
    """Newest first (by time, then id), at most :data:`INBOX_LIMIT`."""
    person_id: str
    preferences: dict[str, list[NotificationChannel]] = msgspec.field(default_factory=dict)
    """Which channels besides the inbox each type of notification reaches."""
    read_ids: list[str] = msgspec.field(default_factory=list)
    """Notifications marked read before they arrived here (events of different aggregates
    may arrive in either order); applied when they do."""
    read_up_to: Instant | None = None
    """Everything at or before this time was marked read at once."""


class CentreStaff(Document, kw_only=True):
    """One per centre: its supervisors and admins, who are told of escalations."""

    centre_id: str
    staff: list[str] = msgspec.field(default_factory=list)


class NotificationChannels(Document, kw_only=True):
    """One per centre that configured its channels. The webhook secret is here for the
    notifier to sign with; no view shows it."""

    centre_id: str
    email_enabled: bool = False
    webhook_secret: str | None = None
    webhook_url: str | None = None


class Contact(Document, kw_only=True):
    """One per person: where their e-mail notifications go."""

    email: str
    name: str
    person_id: str
