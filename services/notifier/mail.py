"""E-mail notifications over SMTP (aiosmtplib)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from services.notifier.settings import DeliverySettings
from services.notifier.webhooks import DeliveryFailed
from shared.notifications import Notification
from shared.readmodels.times import parse


def message(
    notification: Notification, *, to: str, name: str, sender: str, base_url: str = ""
) -> EmailMessage:
    """The e-mail of ``notification``: its title as the subject, its body (times already in the
    centre's time zone) and where to read more. The Message-ID is derived from the notification,
    so a mail system can recognise a retry of one it took."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = formataddr((name, to))
    mail["Subject"] = notification.title
    mail["Date"] = format_datetime(parse(notification.at))
    mail["Message-ID"] = f"<{notification.notification_id}@notifications.tutorpulse>"
    mail["X-Tutorpulse-Delivery"] = notification.notification_id
    mail.set_content(f"{notification.body}\n\nMore: {base_url}{notification.link}\n")
    return mail


async def send(mail: EmailMessage, settings: DeliverySettings) -> None:
    """Hand ``mail`` to the SMTP server; :class:`DeliveryFailed` if it does not take it."""
    try:
        await aiosmtplib.send(
            mail,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password if settings.smtp_user else None,
            start_tls=settings.smtp_tls,
            timeout=settings.timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
