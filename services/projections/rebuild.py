"""``python -m services.projections.rebuild``: rebuild the read models from the event store.

The event store, not the stream, is the source of truth. The rebuild fills a fresh generation
of tables while queries keep reading the current one; once it has caught up, it applies the
last events and makes the new generation current in one transaction, keeps applying whatever
the live projection handled around the switch until the projection's watermark has passed it,
and drops the old tables (``--keep-old`` keeps them for comparison).

Reads the same variables as the services (``TUTORPULSE_STORE``… for the event store,
``TUTORPULSE_READ_STORE``… for the read models).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import structlog
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from shared import events
from shared.eventstore import EventStore
from shared.readmodels.projector import Batch, apply, apply_all
from shared.readmodels.store import ReadStore, open_read_store

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rebuilt:
    generation: int
    replaced: int
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _copy(
    store: EventStore,
    read_store: ReadStore,
    generation: int,
    after: int,
    batch: int,
    progress: Progress | None = None,
    task: TaskID | None = None,
) -> tuple[int, int]:
    """Apply every stored event after ``after``; returns (last notification id, events)."""
    position, count = after, 0
    while True:
        notifications = store.recorder.select_notifications(
            position, batch, inclusive_of_start=False
        )
        if not notifications:
            return position, count
        apply_all(read_store, [(events.decode(n.state), n.id) for n in notifications], generation)
        position = notifications[-1].id
        count += len(notifications)
        if progress is not None and task is not None:
            progress.update(task, completed=position)


def rebuild(
    store: EventStore,
    read_store: ReadStore,
    *,
    batch: int = 1000,
    keep_old: bool = False,
    settle_timeout: float = 30.0,
    show_progress: bool = False,
) -> Rebuilt:
    started = time.perf_counter()
    old = read_store.ensure_ready()
    new = read_store.create_generation()
    head = store.position
    progress = Progress(
        TextColumn("rebuilding read models"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} events"),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("rebuild", total=head)
        position, count = _copy(store, read_store, new, 0, batch, progress, task)
        progress.update(task, total=max(head, position), completed=position)

    with read_store.transaction(new) as tx:
        last = Batch(tx)
        for notification in store.recorder.select_notifications(
            position, 1_000_000, inclusive_of_start=False
        ):
            apply(last, events.decode(notification.state), notification.id)
            position = notification.id
            count += 1
        last.flush()
        tx.make_current()
    switched_at = store.position
    log.info("rebuild.switched", generation=new, previous=old, position=position)

    deadline = time.monotonic() + settle_timeout
    while True:
        position, more = _copy(store, read_store, new, position, batch)
        count += more
        if read_store.watermark() >= switched_at or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not keep_old:
        read_store.drop_generation(old)
    return Rebuilt(new, old, count, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--keep-old", action="store_true", help="keep the replaced tables")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the live projection to pass the switch",
    )
    args = parser.parse_args()
    from services.projections.settings import RebuildSettings
    from services.settings import start

    settings = start(RebuildSettings, "rebuild")
    store, read_store = EventStore(settings.event_store), open_read_store(settings.read_store)
    try:
        result = rebuild(
            store,
            read_store,
            batch=args.batch,
            keep_old=args.keep_old,
            settle_timeout=args.settle_timeout,
            show_progress=True,
        )
    finally:
        store.close()
        read_store.close()
    print(
        f"generation {result.generation} is current (replaced {result.replaced}): "
        f"{result.events} events in {result.seconds:.2f} s ({result.rate:,.0f} events/s)"
    )


if __name__ == "__main__":
    main()
