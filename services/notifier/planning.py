"""Which deliveries an event causes: its notifications (``shared.notifications``), each to the
channels its person chose for its type that their centre has set up."""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from shared import events as ev
from shared.events.notifications import NotificationChannel
from shared.notifications import Notification, notifications_for
from shared.notifications.audience import Documents, audience_of
from shared.readmodels.documents import CHANNELS, CONTACT, INBOX, Document, Kind
from shared.readmodels.store import ReadStore

NOTIFY_PREFIX: Final = "tp.notify"
D = TypeVar("D", bound=Document)


class Delivery(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One notification to send by one channel (a message of ``TP_NOTIFY``)."""

    channel: NotificationChannel
    notification: Notification
    email: str | None = None
    """For e-mail: the address, and the person's name."""
    name: str | None = None

    @property
    def subject(self) -> str:
        n = self.notification
        return f"{NOTIFY_PREFIX}.{n.centre_id}.{self.channel}.{n.notification_id}"

    @property
    def message_id(self) -> str:
        """The same for every plan of this delivery: JetStream keeps one."""
        return f"{self.channel}:{self.notification.notification_id}"


encode = msgspec.json.encode
decode = msgspec.json.Decoder(Delivery).decode


class StoreDocuments:
    """The read store's documents of one centre (another centre's are not there)."""

    def __init__(self, store: ReadStore, centre_id: str) -> None:
        self._store, self._centre = store, centre_id

    def get(self, kind: Kind[D], key: str) -> D | None:
        stored = self._store.get(kind, key)
        return stored.doc if stored is not None and stored.centre_id == self._centre else None


def plan(event: ev.Event, docs: Documents) -> list[Delivery]:
    """The deliveries of ``event`` beyond the inbox."""
    channels = docs.get(CHANNELS, event.centre_id)
    if channels is None or not (channels.webhook_url or channels.email_enabled):
        return []
    deliveries: list[Delivery] = []
    for notification in notifications_for(event, audience_of(event, docs)):
        inbox = docs.get(INBOX, notification.person_id)
        wanted = inbox.preferences.get(notification.type, []) if inbox is not None else []
        if NotificationChannel.WEBHOOK in wanted and channels.webhook_url:
            deliveries.append(
                Delivery(channel=NotificationChannel.WEBHOOK, notification=notification)
            )
        if NotificationChannel.EMAIL in wanted and channels.email_enabled:
            contact = docs.get(CONTACT, notification.person_id)
            if contact is not None:
                deliveries.append(
                    Delivery(
                        channel=NotificationChannel.EMAIL,
                        notification=notification,
                        email=contact.email,
                        name=contact.name,
                    )
                )
    return deliveries
