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
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import Notification
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from shared import events
from shared.eventstore import EventStore
from shared.readmodels.documents import D, Kind, LogRow
from shared.readmodels.projector import Batch, Written, apply, apply_all
from shared.readmodels.store import ReadStore, StoredDoc, Transaction, open_read_store
from shared.readmodels.store.transaction import doc_rows

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


Write = Callable[[Transaction], None]


class _Writer:
    """Commits the rebuild's batches in a thread of its own, each in one transaction of the
    new generation, in order, while the next batch is read and applied: the database's work
    overlaps the projector's. At most ``ahead`` batches wait; the first error is raised to the
    rebuild at its next batch."""

    def __init__(self, read_store: ReadStore, generation: int, ahead: int = 2) -> None:
        self._read_store = read_store
        self._generation = generation
        self._queue: queue.Queue[list[Write] | None] = queue.Queue(maxsize=ahead)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (writes := self._queue.get()) is not None:
            try:
                if self._error is None:
                    with self._read_store.transaction(self._generation, only_writer=True) as tx:
                        for write in writes:
                            write(tx)
            except BaseException as error:  # raised in the rebuild's thread
                self._error = error
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def submit(self, writes: list[Write]) -> None:
        self._raise()
        self._queue.put(writes)

    def drain(self) -> None:
        """Wait until everything submitted is committed."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class _Deferred(Transaction):
    """A batch's transaction whose writes go to the :class:`_Writer`. Only what the rebuild
    forgot (beyond ``keep_documents``) is read, after everything before it is committed."""

    def __init__(self, read_store: ReadStore, generation: int, writer: _Writer) -> None:
        self._read_store = read_store
        self.generation = generation
        self._writer = writer
        self.writes: list[Write] = []

    def get_many(  # type: ignore[override]
        self, kind: Kind[D], keys: Sequence[str]
    ) -> dict[str, StoredDoc[D] | None]:
        self._writer.drain()
        with self._read_store.transaction(self.generation, only_writer=True) as tx:
            return tx.get_many(kind, keys)

    def put_many(self, docs: Sequence[StoredDoc[Any]]) -> None:
        rows = doc_rows(docs)  # encoded now: the next batch changes the documents it keeps
        self.writes.append(lambda tx: tx.put_rows(rows))

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        kept = list(rows)  # the batch clears its list once flushed
        self.writes.append(lambda tx: tx.append_logs(kept))

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        kept = list(versions)
        self.writes.append(lambda tx: tx.set_aggregate_versions(kept))


def _copy(
    store: EventStore,
    read_store: ReadStore,
    generation: int,
    after: int,
    batch: int,
    progress: Progress | None = None,
    task: TaskID | None = None,
    written: Written | None = None,
    writer: _Writer | None = None,
) -> tuple[int, int]:
    """Apply every stored event after ``after``; returns (last notification id, events).
    With ``written`` and ``writer``, the caller is the generation's only writer (before the
    switch): what it wrote is kept between transactions instead of read back, nothing is
    locked, and each batch is committed by ``writer`` while the next one is applied."""
    position, count = after, 0
    for notifications in _pages(store, after, batch):
        items = [(events.decode(n.state), n.id) for n in notifications]
        if writer is None or written is None:
            apply_all(read_store, items, generation)
        else:
            deferred = _Deferred(read_store, generation, writer)
            applying = Batch(deferred, written)
            applying.prefetch(event for event, _ in items)
            for event, notification_id in items:
                apply(applying, event, notification_id)
            applying.flush()
            writer.submit(deferred.writes)
        position = notifications[-1].id
        count += len(notifications)
        if progress is not None and task is not None:
            progress.update(task, completed=position)
    return position, count


def _pages(store: EventStore, after: int, size: int) -> Iterator[Sequence[Notification]]:
    """The stored events after ``after``, ``size`` at a time, each page after the first read in
    a thread of its own while the one before it is applied: the event store's work overlaps the
    projector's. Nothing to read (as mostly while the rebuild settles after its switch) starts
    no thread."""

    def read(position: int) -> Sequence[Notification]:
        return store.recorder.select_notifications(position, size, inclusive_of_start=False)

    notifications = read(after)
    if not notifications:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="rebuild-reader") as reader:
        while notifications:
            page = reader.submit(read, notifications[-1].id)
            yield notifications
            notifications = page.result()


def rebuild(
    store: EventStore,
    read_store: ReadStore,
    *,
    batch: int = 1000,
    keep_old: bool = False,
    settle_timeout: float = 30.0,
    show_progress: bool = False,
    keep_documents: int = 20_000,
) -> Rebuilt:
    """Fill a new generation from the event store and make it current. Until the switch the
    rebuild is the new generation's only writer: it keeps up to ``keep_documents`` of the
    documents it wrote (and every aggregate's version) between its transactions rather than
    reading them back, and locks nothing."""
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
        writer = _Writer(read_store, new)
        try:
            try:
                position, count = _copy(
                    store,
                    read_store,
                    new,
                    0,
                    batch,
                    progress,
                    task,
                    Written(keep_documents),
                    writer,
                )
            finally:
                writer.close()
        except BaseException:  # nothing reads the new generation yet: leave nothing behind
            log.error("rebuild.failed", generation=new, current=old)
            try:
                read_store.drop_generation(new)
            except Exception as error:  # the store is away: the rebuild's own error matters
                log.warning("rebuild.drop_failed", generation=new, error=str(error))
            raise
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
