"""What a ``TP_EVENTS`` message says about the event it carries, read in one place.

The relay publishes every event with the store's notification id in the ``Tp-Notification-Id``
header; the relay reads it back from the stream's tail, and the projection service reads it from
each delivered message and from the message at its consumer's ack floor (its watermark).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

NOTIFICATION_ID = "Tp-Notification-Id"
"""The header carrying the event store's notification id of the event."""


class StreamMessage(Protocol):
    """A delivered message (``nats.aio.msg.Msg``) or one read by sequence (``RawStreamMsg``)."""

    @property
    def headers(self) -> Mapping[str, str] | None: ...


def notification_id_of(message: StreamMessage) -> int:
    """The notification id of the event ``message`` carries. Raises :class:`ValueError` if the
    message has no such header or it is not a positive whole number (a message published by
    hand, not by the relay)."""
    value = (message.headers or {}).get(NOTIFICATION_ID)
    if value is None:
        raise ValueError(f"the message has no {NOTIFICATION_ID} header")
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{NOTIFICATION_ID} is not a positive whole number: {value[:40]!r}")
    return int(value)
