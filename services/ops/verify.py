"""``python -m services.ops verify``: does ``TP_EVENTS`` hold the event store's events as the
relay promises (each once, in notification order, byte for byte)?

It reads the stream's last ``--last`` messages (10,000 by default; one request each) and the
store's events between their first and last notification ids, and reports:

* **missing**: stored, but not in the stream (an event the projections never got);
* **repeated**: in the stream more than once;
* **out of order**: a message whose notification id is not above the one before it;
* **different**: in both, with other bytes;
* **not stored**: in the stream, not in the store: lost with a restore to an earlier point
  (expected then; ``after-restore`` numbers new events past them) or another store's;
* the store's head, beside the stream's last notification id (what lies between waits for the
  relay).

Exit status 0 when nothing is missing, repeated, out of order or different; 1 otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared.eventstore import EventStore
from shared.messaging.auth import EVENTS_STREAM
from shared.messaging.stream_messages import notification_id_of

DEFAULT_LAST = 10_000


@dataclass(frozen=True)
class Streamed:
    sequence: int
    notification_id: int
    data: bytes


@dataclass(frozen=True)
class Verified:
    checked: int
    """Stream messages compared."""
    first: int
    last: int
    """The notification ids the comparison covers (0, 0: the stream is empty)."""
    head: int
    """The store's highest notification id (above ``last``: waiting for the relay)."""
    missing: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)
    different: list[int] = field(default_factory=list)
    not_stored: list[int] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.repeated or self.out_of_order or self.different)

    def describe(self) -> str:
        lines = [
            f"checked {self.checked} messages of {EVENTS_STREAM}, notification ids "
            f"{self.first}-{self.last}; the store's head is {self.head}",
        ]
        for name, ids in (
            ("missing from the stream", self.missing),
            ("repeated in the stream", self.repeated),
            ("out of order", self.out_of_order),
            ("different bytes", self.different),
            ("in the stream, not in the store (lost with a restore?)", self.not_stored),
        ):
            if ids:
                shown = ", ".join(str(i) for i in ids[:20]) + (" …" if len(ids) > 20 else "")
                lines.append(f"{name}: {len(ids)} ({shown})")
        lines.append("consistent" if self.consistent else "NOT consistent")
        return "\n".join(lines)


async def streamed_tail(js: JetStreamContext, last: int) -> list[Streamed]:
    """The stream's last ``last`` messages, oldest first."""
    try:
        state = (await js.stream_info(EVENTS_STREAM)).state
    except NotFoundError:
        return []
    if not state.last_seq:
        return []
    found: list[Streamed] = []
    for sequence in range(max(state.first_seq, state.last_seq - last + 1), state.last_seq + 1):
        try:
            message = await js.get_msg(EVENTS_STREAM, sequence)
        except NotFoundError:  # deleted, or aged out meanwhile
            continue
        found.append(Streamed(sequence, notification_id_of(message), message.data or b""))
    return found


def compare(store: EventStore, streamed: list[Streamed]) -> Verified:
    """``streamed`` against the store's events between its first and last notification ids."""
    head = store.recorder.max_notification_id() or 0
    if not streamed:
        return Verified(0, 0, 0, head)
    ids = [message.notification_id for message in streamed]
    first, last = min(ids), max(ids)
    stored = {
        n.id: bytes(n.state)
        for n in store.recorder.select_notifications(first, last - first + 1, stop=last)
    }
    counts = Counter(ids)
    out_of_order = [
        later.notification_id
        for earlier, later in pairwise(streamed)
        if later.notification_id <= earlier.notification_id
    ]
    by_id = {message.notification_id: message.data for message in streamed}
    return Verified(
        checked=len(streamed),
        first=first,
        last=last,
        head=head,
        missing=sorted(set(stored) - set(counts)),
        repeated=sorted(i for i, n in counts.items() if n > 1),
        out_of_order=out_of_order,
        different=sorted(i for i, data in by_id.items() if i in stored and stored[i] != data),
        not_stored=sorted(set(counts) - set(stored)),
    )
