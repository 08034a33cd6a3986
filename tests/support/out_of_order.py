"""Session events as competing projection replicas see them: the envelope of an event of a
session (or of one of its seats), and batches of events applied out of stream order, each in a
transaction of its own, where an event that overtook one it needs waits and comes back."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TypedDict
from uuid import UUID

from shared import events as ev
from shared.readmodels.projector import Batch, OutOfOrder, RefusedAfterWriting, apply
from shared.readmodels.store import Transaction
from shared.tenancy import Role

Item = tuple[ev.Event, int]
"""An event and its notification id."""


class SessionEnvelope(TypedDict):
    """The fields every event of a session carries, to spread into its constructor."""

    centre_id: str
    aggregate_id: UUID
    aggregate_version: int
    occurred_at: datetime
    actor_id: UUID
    actor_role: Role
    session_id: UUID


def session_envelope(
    centre_id: str,
    session_id: UUID,
    aggregate_id: UUID,
    version: int,
    occurred_at: datetime,
    *,
    actor_id: UUID,
    actor_role: Role = Role.TEACHER,
) -> SessionEnvelope:
    """The envelope of the event ``version`` of ``aggregate_id`` (the session or a seat)."""
    return {
        "centre_id": centre_id,
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": occurred_at,
        "actor_id": actor_id,
        "actor_role": actor_role,
        "session_id": session_id,
    }


def deliver(
    items: Sequence[Item],
    batches: Sequence[Sequence[int]],
    transaction: Callable[[], AbstractContextManager[Transaction]],
) -> None:
    """Apply each batch (indexes into ``items``) as a projection replica does: in one
    transaction, prefetched, each event refused while an earlier one it needs is missing, then
    flushed. A refused event comes back later in a batch of its own, until every one is in.

    An event refused after it changed documents (:class:`RefusedAfterWriting`) fails the test:
    that batch could not be flushed."""
    waiting: deque[int] = deque()
    rounds = deque(list(b) for b in batches)
    refusals = 0
    while rounds or waiting:
        take = rounds.popleft() if rounds else [waiting.popleft()]
        with transaction() as tx:
            batch = Batch(tx)
            batch.prefetch(items[i][0] for i in take)
            for index in take:
                try:
                    apply(batch, *items[index])
                except RefusedAfterWriting:
                    raise
                except OutOfOrder:
                    waiting.append(index)
                    refusals += 1
                    assert refusals < 50 * len(items), "an event waits for ever"
            batch.flush()
