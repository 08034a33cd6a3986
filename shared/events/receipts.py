from __future__ import annotations

from typing import Any, ClassVar

from shared.events.base import Event


class CommandReceiptRecorded(Event, frozen=True, kw_only=True):
    """The first result of a command sent with an ``Idempotency-Key``.

    Stored in the same commit as the command's own events, so a retry either finds the receipt
    and replays the result or races the first attempt and loses on the receipt's version. It is
    bookkeeping of the command service, not a fact of the centre: the relay publishes it like
    every stored event (so stream positions match the store's), and read models ignore it.
    """

    idempotency_key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]

    aggregate_kind: ClassVar[str] = "receipt"
