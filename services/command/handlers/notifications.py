"""A person's notifications and a centre's notification channels.

A person marks read and chooses the channels of their own inbox only: the inbox is the actor's
(uuid5(actor, "inbox")), never one named by the request. The answers never carry a webhook
secret.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.command.commands.notifications import (
    ConfigureNotificationChannels,
    MarkAllNotificationsRead,
    MarkNotificationsRead,
    SetNotificationPreferences,
)
from services.command.domain.aggregate import NotFound
from services.command.domain.inbox import Inbox, NotificationChannels, channels_id, inbox_id
from services.command.responses import (
    AllNotificationsReadView,
    NotificationChannelsView,
    NotificationPreferencesView,
    NotificationsReadView,
    time,
)
from services.command.unit_of_work import UnitOfWork


def _own_inbox(uow: UnitOfWork) -> Inbox:
    actor = uow.actor
    inbox = uow.get_or_start(
        Inbox, inbox_id(actor.user_id), lambda: Inbox.of(actor.user_id, actor.centre_id)
    )
    if inbox.centre_id != actor.centre_id:
        raise NotFound("no inbox of yours in this centre")
    return inbox


def mark_notifications_read(
    command: MarkNotificationsRead, uow: UnitOfWork
) -> NotificationsReadView:
    inbox = _own_inbox(uow)
    inbox.mark_read(command.notification_ids, by=uow.actor)
    return NotificationsReadView(
        person_id=inbox.person_id, marked=len(set(command.notification_ids))
    )


def mark_all_notifications_read(
    command: MarkAllNotificationsRead, uow: UnitOfWork
) -> AllNotificationsReadView:
    inbox = _own_inbox(uow)
    up_to = command.up_to or datetime.now(UTC)
    changed = inbox.mark_all_read(up_to, by=uow.actor)
    return AllNotificationsReadView(person_id=inbox.person_id, up_to=time(up_to), changed=changed)


def set_notification_preferences(
    command: SetNotificationPreferences, uow: UnitOfWork
) -> NotificationPreferencesView:
    inbox = _own_inbox(uow)
    changed = inbox.set_preferences(dict(command.channels), by=uow.actor)
    return NotificationPreferencesView(
        person_id=inbox.person_id, channels=dict(inbox.preferences), changed=changed
    )


def configure_notification_channels(
    command: ConfigureNotificationChannels, uow: UnitOfWork
) -> NotificationChannelsView:
    if command.centre_id != uow.actor.centre_id:
        raise NotFound(f"centre {command.centre_id!r} is not registered")
    channels = uow.get_or_start(
        NotificationChannels,
        channels_id(command.centre_id),
        lambda: NotificationChannels.of(command.centre_id),
    )
    changed = channels.configure(
        by=uow.actor,
        webhook_url=command.webhook_url,
        webhook_secret=command.webhook_secret,
        email_enabled=command.email_enabled,
    )
    return NotificationChannelsView(
        centre_id=command.centre_id,
        webhook_url=channels.webhook_url,
        webhook_secret_set=channels.webhook_secret is not None,
        email_enabled=channels.email_enabled,
        changed=changed,
    )
