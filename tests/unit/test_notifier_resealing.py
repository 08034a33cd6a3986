"""What the notifier keeps of a failed e-mail: an SMTP refusal quoting the opened address or
name goes to TP_DLQ and the logs with them sealed again."""

from __future__ import annotations

from services.notifier.planning import Delivery
from services.notifier.service import resealed
from shared.events.notifications import NotificationChannel
from shared.notifications import Notification, NotificationPriority, NotificationType

SEALED_EMAIL = "pd1.AAAAAAAAAAAAAAAAAAAAAA.0123456789ab.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"
SEALED_NAME = "pd1.AAAAAAAAAAAAAAAAAAAAAA.0123456789ab.BBBBBBBBBBBBBBBB.BBBBBBBBBBBBBBBBBBBBBB"


def delivery(email: str, name: str) -> Delivery:
    notification = Notification(
        notification_id="n-1",
        centre_id="main-campus",
        person_id="00000000-0000-0000-0000-000000000001",
        type=NotificationType.SESSION_REMINDER,
        priority=NotificationPriority.NORMAL,
        title="Maths starts in 15 minutes",
        body="Maths starts at 4 pm",
        link="/api/v1/sessions/x",
        at="2026-04-05T08:45:00Z",
        source_event="SessionReminderSent",
    )
    return Delivery(
        channel=NotificationChannel.EMAIL, notification=notification, email=email, name=name
    )


def test_a_refusal_quoting_the_address_and_name_keeps_them_sealed() -> None:
    sealed = delivery(SEALED_EMAIL, SEALED_NAME)
    opened = delivery("jane@example.org", "Jane Johnson")
    refusal = "SMTPRecipientsRefused: {'jane@example.org': (550, 'no such user: Jane Johnson')}"
    kept = resealed(refusal, opened, sealed)
    assert "jane@example.org" not in kept and "Jane Johnson" not in kept
    assert SEALED_EMAIL in kept and SEALED_NAME in kept and "550" in kept
    assert resealed("timed out", opened, sealed) == "timed out"
    assert resealed(refusal, None, sealed) == refusal  # nothing was opened
