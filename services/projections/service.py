"""The projection service: JetStream events in, read models and change notices out.

A durable pull consumer (``projections``) shared by every replica. Each fetched batch is
applied in one read-store transaction together with the per-aggregate versions that make it
exactly-once (see ``shared.readmodels.store``); only after that commit are the messages acked.
Replicas compete for messages, so an event may arrive before an earlier event of its aggregate
that another replica holds: it is refused, held back by the replica (kept in hand with
in-progress acks) and tried again with its next batches, in stream order with whatever they
bring, until its predecessor is in; so every replica count yields the same read models. Only
when a replica already holds a batch's worth is a refused event given back (a negative ack
with a short delay).

No event stops the read side. A handler error is redelivered with exponential back-off and
after ``TUTORPULSE_PROJECTION_POISON_AFTER`` failures the event is dead-lettered: published to
``TP_DLQ`` (``tp.dlq.<consumer>.<original subject>``, with the headers that say what and why),
recorded as skipped for its aggregate's version (so the aggregate's later events apply), then
terminated. An event refused ``TUTORPULSE_PROJECTION_WAIT_DELIVERIES`` times because an earlier
one is missing (an earlier event it needs was dead-lettered) is dead-lettered the same way, and
so is one refused by a transient conflict (a deadlock, a statement timeout)
``TUTORPULSE_PROJECTION_CONFLICT_RETRIES`` times and then failing ``…_POISON_AFTER`` times more.
These are counted per message by the replica that met them, not by JetStream's delivery count,
which also counts every delivery given back during an outage: outages never count. A replica
that restarts forgets its counts (the event is then tried that many times again).
``python -m services.projections.dead_letters`` lists, replays and discards dead letters.

No outage stops it either: while NATS or the read store cannot be reached, the loop logs the
outage once, backs off, and carries on by itself when they are back; unacknowledged messages
come back through JetStream (``ack_wait``, ``TUTORPULSE_PROJECTION_ACK_WAIT``, short, with
in-progress acks while a batch is applied) and are recognised if they were applied already.

The consumer loop uses nats-py directly: FastStream's batch pull subscriber waits for a full
batch or its timeout (adding that wait to every event's latency), and its non-batch mode
handles a fetched batch concurrently, which would reorder events.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge, Histogram

from services.consumer_pending import record_consumer
from services.projections.metrics import record_streams
from services.projections.settings import ProjectionSettings
from shared import events
from shared.blobs import BlobStore, BlobStoreUnavailable
from shared.events import STREAM_NAME, STREAM_SUBJECTS
from shared.http.operations import NotReady, describe
from shared.messaging.auth import DLQ_STREAM, PROJECTIONS_CONSUMER
from shared.messaging.stream_messages import notification_id_of
from shared.observability import context, tracing
from shared.observability.outage import OutageLog
from shared.readmodels.deltas import announced, notice_for
from shared.readmodels.projector import Batch, Change, OutOfOrder, RefusedAfterWriting, apply
from shared.readmodels.store import GenerationSwitched, ReadStore, SkipResult
from shared.threads import WorkerThreads, outlasting_cancellation

log = structlog.get_logger(__name__)
PROJECTIONS_SERVICE = "projections"
"""Whose tracer makes the apply spans (the program's name, ``services.projections.__main__``)."""

DLQ_PREFIX = "tp.dlq"

APPLIED = Counter("tutorpulse_projection_events_total", "Events handled", ["outcome"])
DEAD_LETTERS = Counter(
    "tutorpulse_projection_dead_letters_total", "Events sent to the dead-letter stream"
)
DEAD_LETTERS_WAITING = Gauge(
    "tutorpulse_projection_dead_letters_waiting",
    "Dead letters of this consumer waiting in TP_DLQ for a replay or a discard",
)
WATERMARK = Gauge(
    "tutorpulse_projection_watermark", "Notification id up to which read models are complete"
)
HELD = Gauge(
    "tutorpulse_projection_held_events",
    "Events this replica holds back until an earlier event of theirs is in",
)
BATCH_SECONDS = Histogram(
    "tutorpulse_projection_batch_seconds",
    "Time to apply and ack one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

WATERMARK_EVERY = 0.25
"""Seconds between two readings of the ack floor while a backlog is worked through (each is a
request to JetStream, a second one to find the floor's position if this replica did not ack it,
and a write to the read store)."""
ACKED_LAST_KEPT = 64
OTHERS_FORGOTTEN_AFTER = 10.0
"""Seconds after this replica last saw a sign of another one taking deliveries (a gap in the
delivery sequence between two of its batches) before it takes its own acks for the ack floor
again: with another replica about, the last to ack may be the other, and only JetStream knows."""

Settings = ProjectionSettings
"""How a replica consumes (``services.projections.settings``)."""

GC_THRESHOLDS = (20_000, 20, 20)
"""The garbage collector's thresholds in a projection process. Decoding events and documents
allocates many small objects: with CPython's defaults (a collection of the youngest every 700
allocations, of the older ones every ten of those) the collector took about a tenth of the
process's CPU on the read-side bench."""


def collect_garbage_less() -> tuple[int, int, int]:
    """Move what is alive after start-up out of the collector's sight (``gc.freeze``) and
    collect less often (:data:`GC_THRESHOLDS`); returns the thresholds it replaced. Reference
    counting still frees everything that is not in a cycle at once."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return before


@dataclass
class _Outcome:
    """What became of each message of a batch."""

    applied: list[int] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    """Refused because an earlier event is missing, and why."""
    retry: dict[int, str] = field(default_factory=dict)
    """Refused by a transient conflict with another writer (a deadlock, a statement timeout),
    and which: try again soon."""
    failed: dict[int, str] = field(default_factory=dict)
    held: list[int] = field(default_factory=list)
    """Refused because an earlier event is missing, and held back by this replica to be tried
    again with its next batches (:meth:`ProjectionService._hold`)."""
    changes: list[Change] = field(default_factory=list)
    watermark: int | None = None
    """The watermark the batch's own transaction recorded, if it did."""
    mixed: bool = False
    """The batch held messages of earlier deliveries: its deliveries say nothing of the ack
    floor (:meth:`ProjectionService._floor_after`)."""


@dataclass
class _Tries:
    """What one message went through in this replica."""

    failed: int = 0
    """Handler failures (an undecodable event is one too)."""
    waited: int = 0
    """Refusals because an earlier event of its aggregate (or one it needs) is missing."""
    conflicts: int = 0
    """Transient conflicts with another writer."""
    wait_counted_until: float = 0.0
    """While it is held, a refusal before this (monotonic) time is not counted in
    :attr:`waited`: it is tried with every batch, but counted as often as a given-back message
    would be delivered again (:meth:`ProjectionService._wait_delay`)."""
    in_hand_at: float = 0.0
    """When JetStream last heard that this replica has the message in hand (its delivery, or
    an in-progress ack), as far as this replica knows; 0 if never held."""


class _Tally:
    """Each message's :class:`_Tries`, by stream sequence, for the messages this replica is
    handling: forgotten when it acks or terminates one, and the oldest first beyond ``limit``
    (messages another replica ended up acking). Outages are never counted: a batch given back
    because NATS or the read store was away meets none of these."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._tries: OrderedDict[int, _Tries] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tries)

    def of(self, message: Msg) -> _Tries:
        sequence = _sequence(message)
        tries = self._tries.get(sequence)
        if tries is None:
            tries = self._tries[sequence] = _Tries()
            while len(self._tries) > self._limit:
                self._tries.popitem(last=False)
        else:
            self._tries.move_to_end(sequence)
        return tries

    def forget(self, message: Msg) -> None:
        if self._tries:  # reading the sequence parses the reply subject: not for nothing
            self._tries.pop(_sequence(message), None)


def _deliveries(
    batch: list[Msg],
) -> tuple[Msg.Metadata.SequencePair | None, Msg.Metadata.SequencePair | None]:
    """The sequences of the batch's first and last messages."""
    if not batch:
        return None, None
    return batch[0].metadata.sequence, batch[-1].metadata.sequence


def _sequence(message: Msg) -> int:
    """The message's sequence in TP_EVENTS: the same on every delivery, to any replica."""
    return message.metadata.sequence.stream if message.metadata.sequence else 0


class _Outage:
    """One dependency's health, as the loop sees it: logged once when an outage starts and once
    when it ends (``projections.<dependency>.unavailable`` / ``.recovered``), and how long to
    wait before the next attempt."""

    def __init__(self, what: str, longest: float) -> None:
        self.what = what
        self.longest = longest
        self._log = OutageLog(f"projections.{what}", dependency=what)

    @property
    def down(self) -> bool:
        return self._log.current is not None

    def failed(self, error: BaseException) -> float:
        self._log.failed(f"{type(error).__name__}: {error}")
        outage = self._log.current
        failures = outage.failures if outage is not None else 1
        return float(min(self.longest, 0.1 * 2 ** min(failures - 1, 10)))

    def ok(self) -> None:
        self._log.succeeded()


class _KeepAlive:
    """Runs ``keeping`` (a batch's in-progress acks) as a task of its own once ``after``
    seconds have passed, until cancelled. Most batches are answered well before: they cost a
    timer, not a task to start and cancel."""

    def __init__(self, keeping: Coroutine[Any, Any, None], after: float) -> None:
        self._keeping: Coroutine[Any, Any, None] | None = keeping
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(after, self._start)

    def _start(self) -> None:
        keeping, self._keeping = self._keeping, None
        if keeping is not None:
            self._task = asyncio.create_task(keeping)

    def cancel(self) -> None:
        self._timer.cancel()
        keeping, self._keeping = self._keeping, None
        if keeping is not None:  # never started: never awaited
            keeping.close()
        if self._task is not None:
            self._task.cancel()


_UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]+")


def _header(value: object, limit: int = 500) -> str:
    """A header value NATS accepts: one line, bounded."""
    return _UNSAFE_HEADER.sub(" ", str(value))[:limit]


def dead_letter_subject(durable: str, subject: str) -> str:
    return f"{DLQ_PREFIX}.{durable}.{subject}"


async def count_dead_letters(js: JetStreamContext, durable: str = PROJECTIONS_CONSUMER) -> int:
    """How many dead letters of ``durable`` wait in TP_DLQ."""
    info = await js.stream_info(DLQ_STREAM, subjects_filter=f"{DLQ_PREFIX}.{durable}.>")
    return sum((info.state.subjects or {}).values()) if info.state.messages else 0


def consumer_config(durable: str, settings: Settings) -> ConsumerConfig:
    """The durable pull consumer every replica shares."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=STREAM_SUBJECTS,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait,
        max_deliver=-1,
        max_ack_pending=20_000,
    )


class ProjectionService:
    def __init__(
        self,
        store: ReadStore,
        nc: Client,
        settings: Settings | None = None,
        durable: str = PROJECTIONS_CONSUMER,
        blobs: BlobStore | None = None,
    ) -> None:
        """``blobs``: where uploaded files are kept, for an erasure to delete a student's
        uploads (:meth:`Batch.erase_blobs`); without it their files are left (and logged)."""
        self._store = store
        self._blobs = blobs
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = ProjectionSettings() if settings is None else settings
        self._durable = durable
        self._stopping = asyncio.Event()
        self._applying = WorkerThreads(1, "projections-apply")
        """The thread that applies batches, one at a time (:meth:`_apply_in_thread`)."""
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._fetching: asyncio.Task[list[Msg]] | None = None
        """The next batch, asked for while the one before it is applied."""
        self._finishing: asyncio.Task[None] | None = None
        """The last batch's acks and notices, sent while the next batch is applied."""
        self._fetch_failures = 0
        self._watermark_checked = 0.0
        self._nats = _Outage("nats", self._settings.outage_backoff)
        self._read_store = _Outage("read_store", self._settings.outage_backoff)
        self._blob_store = _Outage("blob_store", self._settings.outage_backoff)
        self._dead_letters_checked = 0.0
        self._tally = _Tally(self._settings.remembered_messages)
        self._acked_last: OrderedDict[int, int] = OrderedDict()
        """The stream sequence and notification id of the last message of each batch this
        replica acked lately: the consumer's ack floor is usually one of them, and then the
        watermark needs no look-up of the message on the stream."""
        self._floor: tuple[int, int] | None = None
        """The consumer's ack floor as this replica knows it, (delivery sequence, stream
        sequence): every delivery up to it is acked. Read from JetStream, then moved on by each
        batch this replica acked whole whose deliveries follow it without a gap (none were
        handed to anyone else meanwhile); ``None`` when unknown (:meth:`_floor_after`)."""
        self._others_seen = -OTHERS_FORGOTTEN_AFTER
        """When a gap last showed that another replica takes deliveries (monotonic)."""
        self._applied: tuple[int, int] | None = None
        """Like :attr:`_floor`, but moved on as soon as a batch commits, before its acks:
        every delivery up to it (delivery sequence, stream sequence) is in the read models.
        Taken from the ack floor (acked is applied) whenever this replica learns it, then moved
        on through the batches it applied whole (:attr:`_applied_runs`) whose deliveries follow
        it without a gap; ``None`` when unknown. A batch that follows it records the watermark
        in its own transaction (:meth:`_watermark_with`)."""
        self._applied_runs: OrderedDict[int, tuple[int, int]] = OrderedDict()
        """The batches this replica applied whole lately, by first delivery sequence: the
        delivery and stream sequences of their last message (:meth:`_applied_through`)."""
        self._held: dict[int, tuple[Msg, _Tries]] = {}
        """Messages refused because an earlier event is missing and held back, not given back
        to JetStream, by stream sequence (:meth:`_hold`)."""
        self.watermark = 0
        self.dead_letters_waiting: int | None = None

    def stop(self) -> None:
        self._stopping.set()

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until ``stop()``. Nothing else ends it: every error is logged, waited out
        and tried again."""
        while not self._stopping.is_set():
            try:
                await self._start()
                break
            except Exception as error:  # an outage at start: wait for it to end
                await self._pause(self._failed(error, "projections.start_failed"))
        while not self._stopping.is_set():
            try:
                await self._step()
            except Exception as error:  # never let one failure end the read side
                await self._pause(self._failed(error, "projections.step_failed"))
        await self._finished()
        await self._unsubscribe()
        log.info("projections.stopping", durable=self._durable, watermark=self.watermark)

    async def _start(self) -> None:
        await anyio.to_thread.run_sync(self._store.ensure_ready)
        self.watermark = max(self.watermark, await anyio.to_thread.run_sync(self._store.watermark))
        WATERMARK.set(self.watermark)
        self._read_store.ok()
        log.info("projections.starting", durable=self._durable, watermark=self.watermark)

    async def _step(self) -> None:
        if self._subscription is None:
            await self._subscribe()
        subscription = self._subscription
        assert subscription is not None
        fetching, self._fetching = self._fetching, None
        if fetching is None:
            fetching = asyncio.create_task(self._fetch(subscription))
        if self._held and not fetching.done():
            await asyncio.wait({fetching}, timeout=self._held_wait())
            if not fetching.done():  # nothing new meanwhile: keep waiting for it next time
                self._fetching = fetching
                await self._tend_held()
                return
        try:
            fetched = await fetching
        except TimeoutError:  # nothing new (or NATS is away: the checks below notice)
            self._fetch_failures = 0
            await self._finished()
            await self._tend_held()
            await self._advance_watermark(read=True)  # acks of other replicas may have moved it
            await self._refresh_dead_letters()
            return
        except Exception:
            self._fetch_failures += 1
            if self._fetch_failures >= 3:  # e.g. the consumer is gone: create or bind it again
                await self._unsubscribe()
            raise
        self._fetch_failures = 0
        self._nats.ok()
        # Ask for the next batch now, so that its round trip overlaps this one's transaction.
        # It returns as soon as any message is there: a batch never waits to fill up.
        self._fetching = asyncio.create_task(self._fetch(subscription))
        await self._apply_with_held(fetched, caught_up=len(fetched) < self._settings.batch_size)

    async def _apply_with_held(self, fetched: list[Msg], *, caught_up: bool) -> None:
        """Apply ``fetched`` with the held messages (:meth:`_with_held`); its acks and notices
        go out while the next batch is applied."""
        batch, mixed = self._with_held(fetched)
        finish = await self._apply_batch(batch, caught_up=caught_up, hold=True, mixed=mixed)
        # The last batch's acks and notices went out while this one was applied; they come
        # first, so this one's wait for them.
        await self._finished()
        if finish is not None:
            self._finishing = asyncio.create_task(finish)

    # --- messages held back until an earlier event is in -----------------------------------

    def _with_held(self, fetched: list[Msg]) -> tuple[list[Msg], bool]:
        """``fetched`` with every held message taken back in, in stream order (so an event
        comes after the earlier ones it waited for, wherever they came from), and whether any
        was. A held message delivered again (its in-progress acks did not reach JetStream in
        time) is taken in its new delivery."""
        if not self._held:
            return fetched, False
        held, self._held = self._held, {}
        for message in fetched:
            held.pop(_sequence(message), None)
        batch = [message for message, _ in held.values()]
        batch += fetched
        batch.sort(key=_sequence)
        return batch, True

    def _hold(self, batch: list[Msg], outcome: _Outcome, answered: set[int], since: float) -> None:
        """Hold back the messages of ``batch`` refused because an earlier event is missing,
        instead of giving them back to JetStream, as many as a batch: each is tried again with
        this replica's next batches, after the earlier events they may bring. Given back, it
        would be delivered again after its delay, often behind later events of its aggregate,
        which it would then make wait in turn; under a backlog shared by replicas that kept up
        to two refusals per event going. A refusal counts towards ``wait_deliveries`` as often
        as a given-back message would be delivered again; the one that would reach it is left
        to :meth:`_refused`, which dead-letters it. ``since``: when the batch was started (its
        new deliveries were in hand by then)."""
        now = time.monotonic()
        room = self._settings.batch_size - len(self._held)
        for index in list(outcome.waiting):
            if room <= 0:
                break
            message = batch[index]
            tries = self._tally.of(message)
            if now >= tries.wait_counted_until:
                if tries.waited + 1 >= self._settings.wait_deliveries:
                    continue
                tries.waited += 1
                tries.wait_counted_until = now + self._wait_delay(tries.waited)
            if not tries.in_hand_at:
                tries.in_hand_at = since
            self._held[_sequence(message)] = (message, tries)
            del outcome.waiting[index]
            outcome.held.append(index)
            answered.add(index)
            room -= 1

    def _held_wait(self) -> float:
        """Seconds until a held message is due: to be tried again though nothing new came, or
        to be kept in hand (an in-progress ack before ``ack_wait`` runs out)."""
        keep = self._settings.ack_wait / 3
        due = min(
            (
                min(tries.wait_counted_until, tries.in_hand_at + keep)
                for _, tries in self._held.values()
            ),
            default=time.monotonic() + keep,
        )
        return max(0.0, due - time.monotonic())

    async def _tend_held(self) -> None:
        """Keep the held messages in hand, and try them again once one is due."""
        if not self._held:
            return
        now = time.monotonic()
        stale = [
            (message, tries)
            for message, tries in self._held.values()
            if now - tries.in_hand_at >= self._settings.ack_wait / 3
        ]
        if stale:
            await self._send(*(message.in_progress() for message, _ in stale))
            for _, tries in stale:
                tries.in_hand_at = now
        if any(now >= tries.wait_counted_until for _, tries in self._held.values()):
            await self._apply_with_held([], caught_up=True)

    async def _give_back_held(self) -> None:
        """Give the held messages back to JetStream, for any replica to take at once."""
        held, self._held = self._held, {}
        HELD.set(0)
        if held:
            await self._send(*(message.nak() for message, _ in held.values()))

    async def _finished(self) -> None:
        """Wait for the last batch's acks and notices (an error there is logged: its messages
        come back after ``ack_wait`` and are recognised as applied)."""
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            try:
                await finishing
            except Exception as error:
                self._failed(error, "projections.finish_failed")

    async def _fetch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        return await subscription.fetch(self._settings.batch_size, timeout=0.5)

    async def _subscribe(self) -> None:
        """Create the durable consumer, or bring an existing one's settings up to date (a
        shorter ``ack_wait`` after an upgrade), then bind to it. Replicas starting together
        send the same configuration; the last one to arrive changes nothing."""
        try:
            info = await self._js.add_consumer(
                STREAM_NAME, consumer_config(self._durable, self._settings)
            )
        except NotFoundError:
            raise  # no stream yet: an outage like any other, tried again
        except Exception as error:
            if not self._nc.is_connected:
                raise
            # Refused (e.g. an operator changed a setting that cannot be updated): use it as it is.
            log.warning(
                "projections.consumer_not_updated",
                durable=self._durable,
                error=f"{type(error).__name__}: {error}",
            )
            info = await self._js.consumer_info(STREAM_NAME, self._durable)
        self._subscription = await self._js.pull_subscribe_bind(
            durable=self._durable, stream=STREAM_NAME
        )
        # A consumer made again counts its deliveries from 1.
        self._floor = self._applied = None
        self._applied_runs.clear()
        self._nats.ok()
        log.info(
            "projections.consuming",
            durable=self._durable,
            watermark=self.watermark,
            ack_wait=info.config.ack_wait,
            pending=info.num_pending,
            unacknowledged=info.num_ack_pending,
        )

    async def _unsubscribe(self) -> None:
        await self._give_back_held()
        fetching, self._fetching = self._fetching, None
        if fetching is not None:  # its messages come back to a replica after ack_wait
            fetching.cancel()
            with contextlib.suppress(BaseException):
                await fetching
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as error:  # NATS is away: the server forgets the interest anyway
                log.debug("projections.unsubscribe_failed", error=str(error))

    async def _pause(self, seconds: float) -> None:
        """Wait, but no longer than until ``stop()``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _failed(self, error: Exception, event: str) -> float:
        """Log what went wrong (an outage once, anything else every time) and say how long to
        wait before trying again."""
        outage = self._outage_of(error)
        if outage is not None:
            return outage.failed(error)
        log.exception(event, error=describe(error))
        return self._settings.retry_delay * 10

    def _outage_of(self, error: BaseException) -> _Outage | None:
        given_back = self._given_back(error)
        if given_back is not None:
            return given_back
        if isinstance(error, OSError | TimeoutError) or type(error).__module__.startswith("nats"):
            return self._nats
        return None

    def _given_back(self, error: BaseException) -> _Outage | None:
        """The outage that makes a batch be given back whole, uncounted: the read store, or
        the blob store an erasure's files are deleted from, cannot be reached."""
        if self._store.is_unavailable(error):
            return self._read_store
        if isinstance(error, BlobStoreUnavailable):
            return self._blob_store
        return None

    # --- one batch ------------------------------------------------------------------------

    async def handle(self, batch: list[Msg], *, caught_up: bool = True) -> None:
        """Apply one fetched batch, answer each message, publish the change notices. The
        watermark is recorded after a batch that ``caught_up`` with the stream (the live path,
        where a query may wait for it), otherwise at most every ``WATERMARK_EVERY`` seconds."""
        finish = await self._apply_batch(batch, caught_up=caught_up)
        if finish is not None:
            await finish

    async def _apply_batch(
        self, batch: list[Msg], *, caught_up: bool, hold: bool = False, mixed: bool = False
    ) -> Coroutine[Any, Any, None] | None:
        """Apply one batch in one transaction; what is left to do once it is committed (ack,
        answer the refused, publish the notices), or ``None`` if the read store was away and
        the batch was given back. ``hold``: hold back what waits for an earlier event
        (:meth:`_hold`), as the loop does; ``mixed``: the batch has held messages in it."""
        started, in_hand = time.perf_counter(), time.monotonic()
        decoded: list[tuple[events.Event, int] | None] = []
        for message in batch:
            try:
                decoded.append((events.decode(message.data), notification_id_of(message)))
            except Exception:  # an undecodable message is poison, not a crash
                decoded.append(None)
        answered: set[int] = set()
        keep_alive = _KeepAlive(self._in_progress(batch, answered), self._settings.ack_wait / 3)
        watermark = None if mixed else self._watermark_with(batch, decoded)
        try:
            try:
                outcome = await self._apply_in_thread(decoded, watermark)
            except Exception as error:
                outage = self._given_back(error)
                if outage is None:
                    raise
                # Give the messages back for later, rather than letting them wait for ack_wait.
                # An outage is nobody's failure: no message counts it.
                keep_alive.cancel()
                backoff = outage.failed(error)
                await self._send(*(message.nak(delay=backoff) for message in batch))
                await self._pause(backoff)
                return None
        except BaseException:
            keep_alive.cancel()
            raise
        self._read_store.ok()
        self._blob_store.ok()
        outcome.mixed = mixed
        if hold:
            if outcome.waiting:
                self._hold(batch, outcome, answered, in_hand)
            HELD.set(len(self._held))
        if len(outcome.applied) == len(batch) and not mixed:
            self._applied_whole(batch)
        if outcome.watermark is not None:
            self.watermark = outcome.watermark
            WATERMARK.set(outcome.watermark)
        return self._finish(batch, decoded, outcome, answered, keep_alive, started, caught_up)

    def _watermark_with(
        self, batch: list[Msg], decoded: list[tuple[events.Event, int] | None]
    ) -> int | None:
        """The watermark the batch's transaction records if it applies every event: its last
        event's position, when the batch's deliveries follow :meth:`_applied_through` without
        a gap (then every earlier message of the stream is in, at or below that floor or in
        the batch, as for :meth:`_floor_after`) and no other replica was seen lately (a lone
        replica; several ask JetStream, after their acks). Recorded with the batch, the
        watermark is there when the batch commits, not after its acks and a write of its own."""
        if time.monotonic() - self._others_seen < OTHERS_FORGOTTEN_AFTER:
            return None
        applied = self._applied_through()
        first, last = _deliveries(batch)
        if applied is None or first is None or last is None:
            return None
        if first.consumer != applied[0] + 1 or last.consumer - first.consumer != len(batch) - 1:
            return None
        position = decoded[-1]
        if position is None or position[1] <= self.watermark:
            return None
        return position[1]

    def _applied_whole(self, batch: list[Msg]) -> None:
        """Every message of ``batch`` is in the read models: remember its deliveries."""
        first, last = _deliveries(batch)
        if first is None or last is None or last.consumer - first.consumer != len(batch) - 1:
            return
        self._applied_runs[first.consumer] = (last.consumer, last.stream)
        while len(self._applied_runs) > ACKED_LAST_KEPT:
            self._applied_runs.popitem(last=False)

    def _applied_at_least(self, floor: tuple[int, int]) -> None:
        """Every delivery up to ``floor`` is in the read models (it is acked)."""
        if self._applied is None or floor[0] > self._applied[0]:
            self._applied = floor

    def _applied_through(self) -> tuple[int, int] | None:
        """:attr:`_applied`, moved on through the batches applied whole that follow it."""
        applied = self._applied
        while applied is not None and applied[0] + 1 in self._applied_runs:
            applied = self._applied_runs.pop(applied[0] + 1)
        self._applied = applied
        return applied

    async def _finish(
        self,
        batch: list[Msg],
        decoded: list[tuple[events.Event, int] | None],
        outcome: _Outcome,
        answered: set[int],
        keep_alive: _KeepAlive,
        started: float,
        caught_up: bool,
    ) -> None:
        # What the batch was for: on the notices (the gateway logs it with the delta it sends)
        # and on one line (shared.observability.context).
        correlations = context.correlations(batch[index].headers for index in outcome.applied)
        headers = {context.CORRELATION_HEADER: ",".join(correlations)} if correlations else None
        span = None
        tracer = tracing.tracer(PROJECTIONS_SERVICE)
        if tracer is not None and outcome.applied:
            # Tracing on: the batch's apply is a span of its first event's trace, linked to
            # the others', and its notices name it (the gateway's send continues it).
            parents = [
                (batch[index].headers or {}).get(context.TRACEPARENT_HEADER)
                for index in outcome.applied
            ]
            present = [parent for parent in parents if parent]
            span = tracing.start_span(
                tracer,
                "apply",
                present[0] if present else None,
                "consumer",
                links=present[1:],
                attributes={"tutorpulse.events": len(outcome.applied)},
                started_ns=tracing.wall_ns_since(started),
            )
            headers = {**(headers or {}), context.TRACEPARENT_HEADER: tracing.traceparent_of(span)}
        # The notices first: what they announce is committed, and the gateways need not wait
        # for the acks' round trip.
        notices = announced(outcome.changes)
        await self._send(
            *(self._nc.publish(*notice_for(change), headers=headers) for change in notices)
        )
        try:
            await self._answer(batch, decoded, outcome, answered)
        finally:
            keep_alive.cancel()
        if outcome.applied:
            log.info(
                "projections.applied",
                events=len(outcome.applied),
                notices=len(notices),
                correlation_ids=correlations,
            )
        if span is not None:
            tracing.end(span, attributes={"tutorpulse.notices": len(notices)})
        APPLIED.labels("applied").inc(len(outcome.applied))
        APPLIED.labels("out_of_order").inc(
            len(outcome.waiting) + len(outcome.retry) + len(outcome.held)
        )
        APPLIED.labels("failed").inc(len(outcome.failed))
        if outcome.watermark is not None:
            # Recorded with the batch. JetStream's ack floor is still read every WATERMARK_EVERY
            # (the acks that need no ack_sync rely on it, and so does the consumer's gauge).
            if time.monotonic() - self._watermark_checked >= WATERMARK_EVERY:
                await self._advance_watermark(read=True)
        elif caught_up or time.monotonic() - self._watermark_checked >= WATERMARK_EVERY:
            await self._advance_watermark()
        await self._refresh_dead_letters()
        BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _answer(
        self,
        batch: list[Msg],
        decoded: list[tuple[events.Event, int] | None],
        outcome: _Outcome,
        answered: set[int],
    ) -> None:
        """Ack what was applied; give back, or dead-letter, what was refused."""
        after = None if outcome.mixed else self._floor_after(batch)
        self._floor = None  # unknown unless the whole batch is acked
        whole = after is not None and len(outcome.applied) == len(batch)
        # The floor known after this batch and not read from JetStream now (the next read
        # comes after a later batch's ack_sync, or finds it behind, which moves nothing):
        # nothing waits for the server to take the acks.
        known = whole and self._own_floor_stands(time.monotonic())
        acked = await self._acknowledge([batch[index] for index in outcome.applied], sync=not known)
        if outcome.applied:
            last = outcome.applied[-1]
            item = decoded[last]
            if item is not None:
                self._acked_last[_sequence(batch[last])] = item[1]
                while len(self._acked_last) > ACKED_LAST_KEPT:
                    self._acked_last.popitem(last=False)
        if whole and acked:
            self._floor = after
            if after is not None:
                self._applied_at_least(after)
        for index in outcome.applied:
            answered.add(index)
            self._tally.forget(batch[index])
        for index, error in outcome.retry.items():
            tries = self._tally.of(batch[index])
            tries.conflicts += 1
            if tries.conflicts <= self._settings.conflict_retries:
                await self._send(batch[index].nak(delay=self._settings.retry_delay))
            else:  # always in conflict (a statement that always times out): a failure after all
                await self._refused(
                    batch[index],
                    decoded[index],
                    f"{error} (in conflict {tries.conflicts} times)",
                    waiting=False,
                )
            answered.add(index)
        for index, reason in outcome.waiting.items():
            await self._refused(batch[index], decoded[index], reason, waiting=True)
            answered.add(index)
        for index, reason in outcome.failed.items():
            await self._refused(batch[index], decoded[index], reason, waiting=False)
            answered.add(index)

    async def _in_progress(self, batch: list[Msg], answered: set[int]) -> None:
        """Until every message of the batch is answered, tell JetStream every third of
        ``ack_wait`` that the unanswered ones are in hand, so a slow batch is not handed to
        another replica. A task of its own on the event loop (:class:`_KeepAlive`, from the
        first third on), while the batch is applied in a worker thread, so a long transaction
        does not hold it up."""
        while True:
            await self._send(
                *(
                    message.in_progress()
                    for index, message in enumerate(batch)
                    if index not in answered
                )
            )
            await asyncio.sleep(self._settings.ack_wait / 3)

    async def _acknowledge(self, messages: list[Msg], *, sync: bool = True) -> bool:
        """Ack ``messages``; whether they all went out (with ``sync``: and the server took
        them, so the ack floor read next is current)."""
        if not messages:
            return True
        try:
            for message in messages[:-1]:
                await message.ack()
            if sync:
                await messages[-1].ack_sync()
            else:
                await messages[-1].ack()
        except Exception as error:  # they come back after ack_wait and are recognised as applied
            self._nats.failed(error)
            return False
        return True

    def _floor_after(self, batch: list[Msg]) -> tuple[int, int] | None:
        """Where the known ack floor (:attr:`_floor`) moves once ``batch`` is acked whole, if
        its deliveries follow the floor without a gap: its last message. Then every message up
        to it is acked: a message earlier in the stream was first delivered before it
        (JetStream delivers new messages in stream order), so at or below the floor, or in this
        batch. A gap means another replica took deliveries: JetStream is asked again, and for
        ``OTHERS_FORGOTTEN_AFTER`` seconds this replica's acks alone never move the watermark
        (the other's acks may come after its own)."""
        floor = self._floor
        if floor is None or not batch:
            return None
        first, last = batch[0].metadata.sequence, batch[-1].metadata.sequence
        if first is None or last is None:
            return None
        if first.consumer != floor[0] + 1 or last.consumer - first.consumer != len(batch) - 1:
            self._others_seen = time.monotonic()
            return None
        return (last.consumer, last.stream)

    async def _send(self, *operations: Awaitable[Any]) -> None:
        """Acks, naks and notices are best effort: if NATS is away, JetStream redelivers. The
        first failure skips the rest (they would fail the same way)."""
        pending = list(operations)
        try:
            while pending:
                try:
                    await pending.pop(0)
                except (
                    Exception
                ) as error:  # NATS is away or slow: JetStream redelivers what matters
                    self._nats.failed(error)
                    return
        finally:
            for operation in pending:  # skipped, or cancelled meanwhile: never awaited
                if asyncio.iscoroutine(operation):
                    operation.close()

    async def _apply_in_thread(
        self, decoded: list[tuple[events.Event, int] | None], watermark: int | None
    ) -> _Outcome:
        """:meth:`_apply` in the replica's applying thread. A caller cancelled meanwhile is
        cancelled once the batch's transaction is over, not before (as with anyio's worker
        threads, which cost about four times as much CPU per hop)."""
        return await outlasting_cancellation(
            asyncio.ensure_future(self._applying.run(lambda: self._apply(decoded, watermark)))
        )

    def _apply(
        self, decoded: list[tuple[events.Event, int] | None], watermark: int | None = None
    ) -> _Outcome:
        """The batch in one transaction, which also records ``watermark`` if every event of
        the batch is applied; else each event in a transaction of its own."""
        try:
            try:
                return self._apply_together(decoded, trust=True, watermark=watermark)
            except GenerationSwitched:  # a rebuild switched since the last batch: read it
                return self._apply_together(decoded, trust=False, watermark=watermark)
        except Exception as error:  # find the one event that fails, apply the others
            if self._given_back(error) is not None:
                raise
            log.warning(
                "projections.batch_failed",
                size=len(decoded),
                error=f"{type(error).__name__}: {error}",
            )
        outcome = _Outcome()
        for index, item in enumerate(decoded):
            if item is None:
                outcome.failed[index] = "undecodable event"
                continue
            try:
                with self._store.transaction() as tx:
                    batch = Batch(tx, before=False)
                    apply(batch, *item)
                    changes = batch.flush()
                    self._erase_files(batch)
                outcome.changes += changes
                outcome.applied.append(index)
            except OutOfOrder as waiting:
                outcome.waiting[index] = str(waiting)
            except self._store.transient_errors as error:  # e.g. a deadlock with another replica
                outcome.retry[index] = f"{type(error).__name__}: {error}"
            except Exception as error:
                if self._given_back(error) is not None:
                    raise
                log.warning(
                    "projections.event_failed_here",
                    event_type=type(item[0]).__name__,
                    notification_id=item[1],
                    exc_info=True,
                )
                outcome.failed[index] = f"{type(error).__name__}: {error}"
        return outcome

    def _apply_together(
        self,
        decoded: list[tuple[events.Event, int] | None],
        *,
        trust: bool,
        watermark: int | None = None,
    ) -> _Outcome:
        """The batch in one transaction; ``trust``: on the generation the last one wrote (on
        PostgreSQL, confirmed in the round trip of the batch's first reads, not one of its own)."""
        outcome = _Outcome()
        with self._store.transaction(trust=trust) as tx:
            batch = Batch(tx, before=False)
            batch.prefetch(item[0] for item in decoded if item is not None)
            for index, item in enumerate(decoded):
                if item is None:
                    outcome.failed[index] = "undecodable event"
                    continue
                try:
                    apply(batch, *item)
                    outcome.applied.append(index)
                except RefusedAfterWriting:
                    raise  # the batch is spoilt: its events go one transaction each
                except OutOfOrder as waiting:
                    outcome.waiting[index] = str(waiting)
            outcome.changes = batch.flush()
            self._erase_files(batch)
            if watermark is not None and len(outcome.applied) == len(decoded):
                tx.advance_watermark(watermark)
                outcome.watermark = watermark
        return outcome

    def _erase_files(self, batch: Batch) -> None:
        """Delete the files of the batch's erasures (a student's page photos and voice
        comments) before the batch commits: if the commit fails, the events come back and
        delete again (a file already gone is nothing), so no erasure is recorded whose files
        were left. :class:`BlobStoreUnavailable` gives the batch back until the store answers."""
        if not batch.erased_blobs:
            return
        if self._blobs is None:
            log.warning("projections.files_not_erased", files=len(batch.erased_blobs))
            return
        deleted = sum(self._blobs.delete(key) for key in batch.erased_blobs)
        log.info("projections.files_erased", files=len(batch.erased_blobs), deleted=deleted)

    # --- dead letters ---------------------------------------------------------------------

    async def _refused(
        self, message: Msg, item: tuple[events.Event, int] | None, reason: str, *, waiting: bool
    ) -> None:
        """An event that failed (or waited) this time: count it for the message, redeliver it
        later, or, once it failed (or waited) often enough in this replica, dead-letter it.
        Its log lines name what it was for (its correlation and causation ids)."""
        with structlog.contextvars.bound_contextvars(**context.from_headers(message.headers)):
            await self._refused_traced(message, item, reason, waiting=waiting)

    async def _refused_traced(
        self, message: Msg, item: tuple[events.Event, int] | None, reason: str, *, waiting: bool
    ) -> None:
        tries = self._tally.of(message)
        if waiting:
            tries.waited += 1
            count, limit = tries.waited, self._settings.wait_deliveries
        else:
            tries.failed += 1
            count, limit = tries.failed, self._settings.poison_after
        if count < limit:
            if waiting:
                delay = self._wait_delay(count)
            else:
                delay = self._backoff(count)
                log.error(
                    "projections.event_failed",
                    subject=message.subject,
                    failures=count,
                    deliveries=message.metadata.num_delivered,
                    reason=reason,
                    retry_in=delay,
                )
            await self._send(message.nak(delay=delay))
            return
        if waiting:
            reason = f"waited {count} times for an earlier event: {reason}"
        await self._dead_letter(message, item, reason, count)

    def _backoff(self, failures: int) -> float:
        """0.5 s after the first failure, doubling, at most ``max_backoff``."""
        return float(min(self._settings.max_backoff, 0.5 * 2 ** min(failures - 1, 10)))

    def _wait_delay(self, waits: int) -> float:
        """An event waiting for its predecessor is offered again soon (another replica is
        usually applying it), then less often: 50 ms for its first 40 waits (2 s), then
        doubling up to 2 s."""
        if waits <= 40:
            return self._settings.retry_delay
        return float(min(2.0, 0.1 * 2 ** min(waits - 41, 10)))

    async def _dead_letter(
        self, message: Msg, item: tuple[events.Event, int] | None, reason: str, attempts: int
    ) -> None:
        """Publish to TP_DLQ, count the event as in for its aggregate, terminate. If either of
        the first two fails the message is given back and this is tried again later: the
        dead-letter publish is deduplicated by its message id."""
        headers = message.headers or {}
        sequence = _sequence(message)
        original_id = headers.get("Nats-Msg-Id") or f"{STREAM_NAME}:{sequence}"
        dead = {
            "Nats-Msg-Id": _header(f"dlq:{self._durable}:{original_id}"),
            "Tp-Dlq-Subject": _header(message.subject, 1000),
            "Tp-Dlq-Msg-Id": _header(original_id),
            "Tp-Dlq-Stream-Seq": str(sequence),
            "Tp-Dlq-Deliveries": str(message.metadata.num_delivered or 1),
            "Tp-Dlq-Reason": _header(reason),
            "Tp-Dlq-Consumer": self._durable,
            "Tp-Dlq-At": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        for name in (
            "Tp-Notification-Id",
            "Tp-Event-Type",
            context.CORRELATION_HEADER,
            context.CAUSATION_HEADER,
        ):
            if headers.get(name):
                dead[name] = _header(headers[name])
        backoff = self._backoff(attempts)
        await self._send(message.in_progress())
        try:
            await self._js.publish(
                dead_letter_subject(self._durable, message.subject), message.data, headers=dead
            )
        except Exception as error:  # not dead-lettered: give it back and try again later
            log.error(
                "projections.dead_letter_publish_failed",
                subject=message.subject,
                error=f"{type(error).__name__}: {error}",
                retry_in=backoff,
            )
            self._nats.failed(error)
            await self._send(message.nak(delay=backoff))
            return
        if item is not None:
            event, notification_id = item
            try:
                result = await anyio.to_thread.run_sync(self._skip, event, notification_id, reason)
            except Exception as error:
                if self._store.is_unavailable(error):
                    self._read_store.failed(error)
                else:
                    log.exception("projections.skip_failed", subject=message.subject)
                await self._send(message.nak(delay=backoff))
                return
        else:
            result = None
        await self._send(message.term())
        self._tally.forget(message)
        DEAD_LETTERS.inc()
        APPLIED.labels("dead_lettered").inc()
        self._dead_letters_checked = 0.0  # count them again soon
        log.error(
            "projections.dead_lettered",
            subject=message.subject,
            reason=reason,
            attempts=attempts,
            deliveries=message.metadata.num_delivered,
            notification_id=headers.get("Tp-Notification-Id"),
            aggregate=result.value if result else None,
        )

    def _skip(self, event: events.Event, notification_id: int, reason: str) -> SkipResult:
        with self._store.transaction() as tx:
            return tx.skip(
                str(event.aggregate_id),
                event.aggregate_version,
                notification_id,
                event.type_name,
                reason[:1000],
            )

    async def _refresh_dead_letters(self, *, force: bool = False) -> None:
        if (
            not force
            and time.monotonic() - self._dead_letters_checked < self._settings.dead_letter_refresh
        ):
            return
        self._dead_letters_checked = time.monotonic()
        try:
            waiting = await asyncio.wait_for(count_dead_letters(self._js, self._durable), 2.0)
        except Exception as error:  # the next round tries again
            self._nats.failed(error)
            return
        self.dead_letters_waiting = waiting
        DEAD_LETTERS_WAITING.set(waiting)
        await record_streams(self._js, (STREAM_NAME, DLQ_STREAM))

    # --- watermark and readiness ------------------------------------------------------------

    async def _advance_watermark(self, *, read: bool = False) -> None:
        """Everything up to the consumer's ack floor is in the read models: record its position.
        The floor is read from JetStream (``read``, at least every ``WATERMARK_EVERY`` seconds,
        and whenever another replica may have acked since) or, when this replica knows it, is
        the end of its own last batch (:meth:`_floor_after`): no request for that."""
        now = time.monotonic()
        known = self._floor
        if not read and known is not None and self._own_floor_stands(now):
            position = self._acked_last.get(known[1])
            if position is not None:
                await self._record_watermark(position)
                return
        self._watermark_checked = now
        try:
            info = await self._js.consumer_info(STREAM_NAME, self._durable)
        except NotFoundError:  # the consumer is gone (e.g. NATS lost its state): create it again
            log.warning("projections.consumer_missing", durable=self._durable)
            await self._unsubscribe()
            return
        except Exception as error:  # the next batch tries again
            self._nats.failed(error)
            return
        self._nats.ok()
        record_consumer(self._durable, info)
        acked = info.ack_floor
        # JetStream's floor may be behind the one this replica knows (its last acks not taken
        # yet): the known one stands.
        if acked is not None and (self._floor is None or acked.consumer_seq > self._floor[0]):
            self._floor = (acked.consumer_seq or 0, acked.stream_seq or 0)
        if acked is not None:
            self._applied_at_least((acked.consumer_seq or 0, acked.stream_seq or 0))
        floor = acked.stream_seq if acked else 0
        if not floor:
            return
        position = self._acked_last.get(floor)
        if position is None:  # acked by another replica, or not at the end of a batch
            try:
                position = notification_id_of(await self._js.get_msg(STREAM_NAME, floor))
            except Exception as error:  # e.g. aged out of the stream: the next floor will do
                log.debug("projections.watermark_unknown", error=str(error), floor=floor)
                return
        await self._record_watermark(position)

    def _own_floor_stands(self, now: float) -> bool:
        """Whether the ack floor this replica follows from its own acks may stand for
        JetStream's at ``now``: read from JetStream within ``WATERMARK_EVERY``, and no sign of
        another replica taking deliveries for ``OTHERS_FORGOTTEN_AFTER``."""
        return (
            now - self._watermark_checked < WATERMARK_EVERY
            and now - self._others_seen >= OTHERS_FORGOTTEN_AFTER
        )

    async def _record_watermark(self, position: int) -> None:
        if position <= self.watermark:
            return
        try:
            await anyio.to_thread.run_sync(self._store.advance_watermark, position)
        except Exception as error:
            if not self._store.is_unavailable(error):
                raise
            self._read_store.failed(error)
            return
        self._read_store.ok()
        self.watermark = position
        WATERMARK.set(position)

    async def readiness(self, timeout: float = 0.6) -> dict[str, Any]:
        """Raise :class:`NotReady` unless NATS and the read store both answer within
        ``timeout`` (checked at the same time, so a hung dependency costs ``timeout`` once);
        the details say the watermark and how many dead letters wait."""

        async def nats() -> int:
            if not self._nc.is_connected:
                raise ConnectionError("NATS is not connected")
            return await asyncio.wait_for(count_dead_letters(self._js, self._durable), timeout)

        async def store() -> int:
            return await asyncio.wait_for(
                anyio.to_thread.run_sync(self._store.watermark, abandon_on_cancel=True), timeout
            )

        waiting, watermark = await asyncio.gather(nats(), store(), return_exceptions=True)
        details: dict[str, Any] = {
            "consumer": self._durable,
            "watermark": self.watermark,
            "deadLettersWaiting": self.dead_letters_waiting,
        }
        if isinstance(waiting, int):
            self.dead_letters_waiting = details["deadLettersWaiting"] = waiting
            DEAD_LETTERS_WAITING.set(waiting)
        if isinstance(watermark, int):
            details["watermark"] = watermark
        problems = {
            name: describe(result)
            for name, result in (("nats", waiting), ("readStore", watermark))
            if isinstance(result, BaseException)
        }
        if problems:
            raise NotReady(
                "; ".join(f"{name}: {problem}" for name, problem in problems.items()),
                details | {"unavailable": problems},
            )
        return details
