"""The ``inbox`` and ``centre_staff`` documents.

Every event is offered to :func:`notify` after its own projection (``apply`` calls it): an event
of :data:`shared.notifications.NOTIFYING_EVENTS` puts a notification in the inbox of each person
:func:`shared.notifications.notifications_for` names, with what the batch's documents say about
them; a person registering gets a contact (their e-mail address), and a supervisor or admin
joins their centre's staff. The inbox's own events
(marking read) are projected like any other. The result does not depend on the order in which
a notification and its being marked read arrive.
"""

from __future__ import annotations

from shared import events as ev
from shared.events.notifications import (
    AllNotificationsRead,
    NotificationChannelsConfigured,
    NotificationPreferencesSet,
    NotificationsRead,
)
from shared.notifications import NOTIFYING_EVENTS, Notification, notifications_for
from shared.notifications.audience import audience_of
from shared.readmodels.documents import (
    CENTRE_STAFF,
    CHANNELS,
    CONTACT,
    INBOX,
    CentreStaff,
    Contact,
    Inbox,
    InboxItem,
    NotificationChannels,
)
from shared.readmodels.documents.notifications import INBOX_LIMIT
from shared.readmodels.ids import id_text
from shared.readmodels.projector.batch import TOLD_OF_ESCALATIONS, Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso

EARLY_READS_KEPT = 1000
"""Ids marked read before their notification arrived that an inbox remembers."""


def _inbox(docs: Batch, person_id: str, centre_id: str) -> Inbox:
    inbox = docs.get(INBOX, person_id)
    return inbox if inbox is not None else Inbox(person_id=person_id, centre_id=centre_id)


def _is_read(inbox: Inbox, item: InboxItem) -> bool:
    if item.notification_id in inbox.read_ids:
        return True
    return inbox.read_up_to is not None and item.at <= inbox.read_up_to


def deliver(docs: Batch, notification: Notification) -> None:
    """Put ``notification`` in its person's inbox (once, however often it is delivered)."""
    inbox = _inbox(docs, notification.person_id, notification.centre_id)
    if any(i.notification_id == notification.notification_id for i in inbox.items):
        return
    item = InboxItem(
        notification_id=notification.notification_id,
        type=notification.type,
        priority=notification.priority,
        title=notification.title,
        body=notification.body,
        link=notification.link,
        at=notification.at,
    )
    item.read = _is_read(inbox, item)
    if item.notification_id in inbox.read_ids:
        inbox.read_ids.remove(item.notification_id)
    inbox.items.append(item)
    inbox.items.sort(key=lambda i: (i.at, i.notification_id), reverse=True)
    del inbox.items[INBOX_LIMIT:]
    docs.put(INBOX, notification.person_id, notification.centre_id, inbox)


def notify(docs: Batch, event: ev.Event) -> None:
    """What ``event`` changes in inboxes, contacts and its centre's staff."""
    if isinstance(event, NOTIFYING_EVENTS):
        for notification in notifications_for(event, audience_of(event, docs)):
            deliver(docs, notification)
    elif isinstance(event, ev.PersonRegistered):
        person = id_text(event.aggregate_id)
        contact = Contact(person_id=person, name=event.name, email=event.email)
        docs.put(CONTACT, person, event.centre_id, contact)
        if event.role in TOLD_OF_ESCALATIONS:
            _join_staff(docs, event)


def _join_staff(docs: Batch, event: ev.PersonRegistered) -> None:
    staff = docs.get(CENTRE_STAFF, event.centre_id) or CentreStaff(centre_id=event.centre_id)
    person = id_text(event.aggregate_id)
    if person not in staff.staff:
        staff.staff = sorted([*staff.staff, person])
        docs.put(CENTRE_STAFF, event.centre_id, event.centre_id, staff)


@projects(NotificationsRead)
def notifications_read(docs: Batch, e: NotificationsRead) -> None:
    person = id_text(e.person_id)
    inbox = _inbox(docs, person, e.centre_id)
    by_id = {item.notification_id: item for item in inbox.items}
    for notification_id in map(str, e.notification_ids):
        item = by_id.get(notification_id)
        if item is not None:
            item.read = True
        elif notification_id not in inbox.read_ids:
            inbox.read_ids.append(notification_id)
    del inbox.read_ids[:-EARLY_READS_KEPT]
    docs.put(INBOX, person, e.centre_id, inbox)


@projects(AllNotificationsRead)
def all_notifications_read(docs: Batch, e: AllNotificationsRead) -> None:
    person = id_text(e.person_id)
    inbox = _inbox(docs, person, e.centre_id)
    up_to = iso(e.up_to)
    if inbox.read_up_to is None or up_to > inbox.read_up_to:
        inbox.read_up_to = up_to
    for item in inbox.items:
        if item.at <= up_to:
            item.read = True
    docs.put(INBOX, person, e.centre_id, inbox)


@projects(NotificationPreferencesSet)
def preferences_set(docs: Batch, e: NotificationPreferencesSet) -> None:
    person = id_text(e.person_id)
    inbox = _inbox(docs, person, e.centre_id)
    inbox.preferences = {kind: list(channels) for kind, channels in e.channels.items()}
    docs.put(INBOX, person, e.centre_id, inbox)


@projects(NotificationChannelsConfigured)
def channels_configured(docs: Batch, e: NotificationChannelsConfigured) -> None:
    docs.put(
        CHANNELS,
        e.centre_id,
        e.centre_id,
        NotificationChannels(
            centre_id=e.centre_id,
            webhook_url=e.webhook_url,
            webhook_secret=e.webhook_secret,
            email_enabled=e.email_enabled,
        ),
    )
