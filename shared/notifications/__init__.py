"""Notifications: who is told what when something happens.

:func:`notifications_for` turns an event and what the read side knows about the people it
concerns (:class:`Audience`, gathered by :func:`audience_of`) into :class:`Notification` s, each
with an id derived from the event and the person, so a redelivered event never tells anyone
twice. The inbox projection (``shared.readmodels.projector.notifications``) and the notifier
service (``services.notifier``) both compute them here.
"""

from shared.notifications.model import (
    Audience,
    Notification,
    NotificationPriority,
    NotificationType,
    notification_id,
)
from shared.notifications.render import local_time
from shared.notifications.rules import NOTIFYING_EVENTS, notifications_for

__all__ = [
    "NOTIFYING_EVENTS",
    "Audience",
    "Notification",
    "NotificationPriority",
    "NotificationType",
    "local_time",
    "notification_id",
    "notifications_for",
]
