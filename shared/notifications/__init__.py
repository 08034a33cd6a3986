"""Notifications: who is told what when something happens.

:func:`notifications_for` turns an event and what the read side knows about the people it
concerns (:class:`Audience`, gathered by :func:`audience_of`) into :class:`Notification` s, each
with an id derived from the event and the person, so a redelivered event never tells anyone
twice. The inbox projection (``shared.readmodels.projector.notifications``) and the notifier
service (``services.notifier``) both compute them here.
"""

from typing import TYPE_CHECKING, Any

from shared.notifications.model import (
    Audience,
    Notification,
    NotificationPriority,
    NotificationType,
    notification_id,
)
from shared.notifications.render import local_time

if TYPE_CHECKING:
    from shared.notifications.rules import NOTIFYING_EVENTS, notifications_for


def __getattr__(name: str) -> Any:
    """The rules on first use, so that the read side's documents can import this package's
    types without the rules (and the read side's helpers they import) coming with them."""
    if name in ("NOTIFYING_EVENTS", "notifications_for"):
        from shared.notifications import rules

        return getattr(rules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
