"""Applying events to read models, exactly once and in order per aggregate.

Each kind of document has a module here with the functions that shape it from events, each
registered for the event types it projects (:func:`.registry.projects`). Every function is
deterministic in the events alone (never the wall clock), so a rebuild from the event store
produces exactly what the live projection produced.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from shared import events as ev
from shared.readmodels.documents import LogRow
from shared.readmodels.ids import id_text
from shared.readmodels.projector import (  # noqa: F401  (each registers its projections)
    catch_up,
    centres,
    classes,
    erasure,
    exercise,
    homework,
    notifications,
    paper,
    seats,
    session,
    student,
)
from shared.readmodels.projector.batch import Batch, Change, OutOfOrder, Written
from shared.readmodels.projector.registry import (
    _HANDLERS as _HANDLERS,  # the dispatch table: tests swap a projection for one that fails
)
from shared.readmodels.projector.registry import (
    projected_event_types,
    projection_of,
)
from shared.readmodels.projector.tutor import TUTOR_HISTORY_DAYS
from shared.readmodels.store import ReadStore

_to_builtins = msgspec.to_builtins


class RefusedAfterWriting(OutOfOrder):
    """A projection refused its event (:class:`OutOfOrder`) after changing documents of the
    batch: that batch cannot be flushed. Where the event has a transaction of its own, it
    waits like any event refused."""


def apply(batch: Batch, event: ev.Event, notification_id: int) -> bool:
    """Apply one event within ``batch``; ``False`` if it was applied before.

    Raises :class:`OutOfOrder` if an earlier event of the same aggregate is missing, or if the
    event needs a document that an event of another aggregate has not created yet.
    """
    aggregate_id = id_text(event.aggregate_id)
    applied = batch.aggregate_version(aggregate_id)
    if event.aggregate_version <= applied:
        return False
    if event.aggregate_version != applied + 1:
        raise OutOfOrder(
            f"{event.type_name} v{event.aggregate_version} of {aggregate_id} "
            f"arrived before v{applied + 1}"
        )
    projection = projection_of(type(event))
    batch.position = notification_id
    if projection is not None:
        try:
            projection(batch, event)
        except OutOfOrder:
            if batch.touched_by_event():
                # What it changed in the batch cannot be taken back: fail the batch (a replica
                # then applies its events one transaction each) rather than let the next event
                # count these documents as touched, or write them.
                raise RefusedAfterWriting(
                    f"{event.type_name} v{event.aggregate_version} of {aggregate_id} was refused "
                    "after it changed documents"
                ) from None
            raise
    notifications.notify(batch, event)
    if isinstance(event, ev.SessionScopedEvent):
        payload = _to_builtins(event)
        batch.log(
            LogRow(
                notification_id=notification_id,
                session_id=id_text(event.session_id),
                centre_id=event.centre_id,
                aggregate_id=aggregate_id,
                aggregate_version=event.aggregate_version,
                occurred_at=payload["occurredAt"],
                event_type=event.type_name,
                actor_id=id_text(event.actor_id),
                actor_role=str(event.actor_role),
                event=payload,
            )
        )
    batch.applied(aggregate_id, event.aggregate_version)
    return True


def apply_all(
    store: ReadStore, items: Iterable[tuple[ev.Event, int]], generation: int | None = None
) -> list[Change]:
    """Apply events in order in one transaction (for rebuilds and tests)."""
    items = list(items)
    with store.transaction(generation) as tx:
        batch = Batch(tx)
        batch.prefetch(event for event, _ in items)
        for event, notification_id in items:
            apply(batch, event, notification_id)
        return batch.flush()


__all__ = [
    "TUTOR_HISTORY_DAYS",
    "Batch",
    "Change",
    "OutOfOrder",
    "RefusedAfterWriting",
    "Written",
    "apply",
    "apply_all",
    "projected_event_types",
]
