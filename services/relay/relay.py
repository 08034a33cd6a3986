"""The relay: committed events, in notification order, from the event store to JetStream.

Nothing is written twice: the store is the only thing commands write to, and the relay tails
its notification log. Each batch is published with asynchronous acks; the relay's position is
recorded in the store's tracking table only after every message of the batch was acked. After
a crash the relay republishes from its recorded position, and JetStream drops the repeats by
their ``Nats-Msg-Id`` (``<store>:<notification id>``), which the stream keeps for its
duplicate window (infra/nats/streams.json).

Order: the batch is pipelined (every publish is sent before the first ack is awaited), so
JetStream could refuse one publish and store the ones after it (it did, when not yet ready after a
restart). It cannot: every publish names what the stream must end with for it to be stored, the
previous event's ``Nats-Msg-Id`` (``Nats-Expected-Last-Msg-Id``), and the first of a batch the
stream's last sequence as the previous batch's last ack gave it (``Nats-Expected-Last-Sequence``).
A refused event refuses all those after it; the batch fails and is published again from the first
event the stream lacks. JetStream checks ``Nats-Msg-Id`` before the last message id, so a repeat
is acked as a duplicate; but a duplicate does not move the stream's end, so after a failure, and
when it starts leading, the relay does not know what the stream ends with: it publishes one event
at a time, without expectations (alone in flight, each goes after whatever the stream ends with),
until JetStream stores one; from that event on it pipelines again. An old leader's publishes still
in flight when a standby takes over cannot put an event out of order either.

Every wait on NATS is bounded (``ack_timeout``): a batch whose acks do not all arrive in time is
abandoned (and at once if the connection drops meanwhile: those acks never come) and published
again from the recorded position, until it goes through; the relay never gives up and never
exits. Before publishing again it compares the stream's tail with the store, and moves past
what the stream already holds, so a repeat older than the duplicate window is not stored twice.

Waking up: on PostgreSQL the relay listens for the notification every commit of events sends
(:mod:`services.relay.wakeup`) and reads the log as soon as it comes, polling only once a
second (``listening_poll_seconds``) in case one was lost; without notifications (SQLite, or
while the listening connection is down) it polls every 5 to 50 ms.

Leadership and outages: a relay takes the lease only while it is connected to NATS, and a
leader that could not publish for ``handover_seconds`` while events wait gives the lease up and
stays out for a moment, so a standby with a working connection takes over (when NATS is down for
everyone, they take turns and nothing is lost). A lost lease (the store's connection died, e.g.
PostgreSQL restarted) sends the relay back to acquiring it.

A frozen PostgreSQL (its connections open, nothing answering) cannot hold the relay either: every
call on the store, on the relay's own connection (:mod:`services.relay.notifications`) or on the
lease's, waits ``TUTORPULSE_RELAY_STORE_TIMEOUT_SECONDS`` at most, then fails. The first such
failure is logged (``relay.store.unavailable``, once per outage) and makes ``/ready`` 503 until a
call succeeds again; a lease whose check is not answered in time is let go (the relay stops
publishing and its connection is shut down, so the server frees the lock once it runs), and the
relay goes back to acquiring it, which succeeds once the server answers again. What was being
published meanwhile is published again from the recorded position (JetStream drops the repeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import nats.errors
import structlog
from eventsourcing.persistence import (
    Notification,
    OperationalError,
    PersistenceError,
    TrackingRecorder,
)
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from prometheus_client import Counter, Gauge, Histogram

from services.relay.lease import Lease, LeaseLost
from services.relay.notifications import relay_log
from services.relay.publishing import Publisher, Refused
from services.relay.settings import RelaySettings
from services.relay.wakeup import Wakeup, wakeup_for
from shared.events import STREAM_NAME, decode_header, subject_for
from shared.eventstore import EventStore
from shared.eventstore.postgres import Deadline, deadline
from shared.eventstore.store import STORE_NAME
from shared.http.operations import describe
from shared.messaging.stream_messages import notification_id_of
from shared.observability import tracing
from shared.observability.context import TRACEPARENT_HEADER, trace_headers
from shared.observability.metrics import Backlog
from shared.observability.outage import OutageLog

log = structlog.get_logger(__name__)
RELAY_SERVICE = "relay"
"""Whose tracer makes the publish spans (the program's name, ``services.relay.__main__``)."""
T = TypeVar("T")

TRACKING_NAME = "relay.nats"
RECONCILE_LIMIT = 10_000
"""The most events the relay checks against the stream's tail before publishing again."""
CONNECTION_CHECK_SECONDS = 0.05
"""How often the relay looks at its connection while acks are outstanding: the acks of a
connection that dropped never come, so the batch is given up then, not at the ack timeout."""

PUBLISHED = Counter("tutorpulse_relay_published_total", "Events published to JetStream")
DUPLICATES = Counter(
    "tutorpulse_relay_duplicates_total", "Publishes JetStream acked as duplicates (after a restart)"
)
FAILED_BATCHES = Counter(
    "tutorpulse_relay_failed_batches_total",
    "Batches abandoned (acks missing or refused) and published again",
)
POSITION = Gauge("tutorpulse_relay_position", "Last notification id acked by JetStream")
LAG = Backlog(
    Gauge(
        "tutorpulse_relay_lag_events",
        "Committed events not yet acked by JetStream: the store's head minus the position",
    ),
    Gauge(
        "tutorpulse_relay_lag_seconds",
        "Seconds since the relay's lag was last 0 (0 while it is): how long committed events "
        "have been waiting to be published",
    ),
)
LEADER = Gauge("tutorpulse_relay_leader", "1 while this relay holds the publishing lease")
BATCH_SECONDS = Histogram(
    "tutorpulse_relay_batch_seconds",
    "Time to publish and ack one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def message_id(notification_id: int) -> str:
    return f"{STORE_NAME}:{notification_id}"


class PublishFailed(Exception):
    """A batch did not go through: NATS down, frozen, or refusing."""


class HandOver(Exception):
    """The leader gives the lease up so that a relay with a working connection can lead."""


@dataclass(frozen=True)
class RelayStatus:
    leader: bool
    position: int
    lag: int | None
    seconds_since_progress: float
    problem: str | None
    """Why the relay cannot make progress, or None."""

    def details(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "position": self.position,
            "lagEvents": self.lag,
            "secondsSinceProgress": round(self.seconds_since_progress, 3),
        }


class Relay:
    def __init__(
        self,
        store: EventStore,
        tracking: TrackingRecorder,
        js: JetStreamContext,
        lease: Lease,
        settings: RelaySettings | None = None,
        *,
        nc: Client | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        """``nc``: the connection ``js`` came from; with it the relay does not publish (nor
        lead) while disconnected, and reports the connection in its status. ``wakeup``: what
        tells it of commits (by default the store's notifications, where it has them)."""
        self._store = store
        self._tracking = tracking
        self._settings = settings or RelaySettings()
        self._log = relay_log(store, tracking, TRACKING_NAME, self._settings.store_timeout)
        self._js = js
        self._nc = nc
        # The connection js publishes on (nats-py keeps it private) when nc is not given.
        self._publisher = Publisher(nc if nc is not None else js._nc)
        self._careful = True
        """Publish one event at a time, without expectations, until JetStream stores one (not
        a duplicate): leading anew and after any failure, when the end of the stream is not
        known to be the last event acked."""
        self._tail_seq = 0
        """The stream sequence of the last event acked: what the next batch's first event
        expects as the stream's last, when not careful."""
        self._lease = lease
        self._wakeup = wakeup_for(store, self._settings.store_timeout) if wakeup is None else wakeup
        self._stopping = asyncio.Event()
        self._nats_outage = OutageLog("relay.nats")
        self._store_outage = OutageLog("relay.store")
        self._progress_at = time.monotonic()
        self._standby_logged = False
        self._confirm_due = False
        self.position = 0
        self.lag: int | None = None
        self.is_leader = False

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.ring()

    @property
    def acks_outstanding(self) -> int:
        """Events published whose ack has not come (nor been given up)."""
        return self._publisher.waiting

    @property
    def nats_connected(self) -> bool:
        return self._nc is None or self._nc.is_connected

    def status(self) -> RelayStatus:
        """What ``/ready`` reports: a relay whose last call on the store failed (or was not
        answered within ``store_timeout``), or a leader with events waiting and no batch
        through for ``stall_seconds``, cannot make progress."""
        since = time.monotonic() - self._progress_at
        problem = None
        store = self._store_outage.current
        if not self.nats_connected:
            problem = "NATS is not connected"
        elif store is not None:
            problem = f"the event store does not answer ({store.reason})"
        elif (
            self.is_leader
            and (self.lag is None or self.lag > 0)
            and since > self._settings.stall_seconds
        ):
            outage = self._nats_outage.current or self._store_outage.current
            problem = f"no batch relayed for {since:.0f} s while {self.lag} events wait" + (
                f" ({outage.reason})" if outage else ""
            )
        return RelayStatus(self.is_leader, self.position, self.lag, since, problem)

    async def run(self) -> None:
        """Wait for the lease, then relay until stopped; a lost lease sends it back to waiting.
        Nothing but ``stop()`` ends it."""
        await self._wakeup.start()
        try:
            await self._run()
        finally:
            await self._wakeup.stop()
            await self._log.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if not self.nats_connected:  # leading now could only fail: leave it to another
                self._nats_outage.failed("NATS is not connected")
                await self._standby_round()
                continue
            try:
                acquired = await self._lease_call(self._lease.try_acquire)
            except Exception as error:  # the store is down: try again, log once
                self._store_outage.failed(describe(error))
                await self._sleep(self._settings.lease_retry_seconds)
                continue
            if not acquired:
                if not self._standby_logged:
                    log.info("relay.standby", reason="another relay holds the lease")
                    self._standby_logged = True
                await self._standby_round()
                continue
            pause = 0.0
            self._standby_logged = False
            self.is_leader = True
            LEADER.set(1)
            log.info("relay.leading")
            try:
                await self._relay_while_leading()
            except LeaseLost as error:
                log.error("relay.lease_lost", reason=str(error))
            except HandOver as error:
                log.warning("relay.handing_over", reason=str(error))
                pause = 2 * self._settings.lease_retry_seconds
            except PersistenceError:  # logged once by the store outage log
                pause = self._settings.lease_retry_seconds
            except Exception:  # a relay that stops relaying helps nobody: log, lead again
                log.exception("relay.failed")
                pause = self._settings.lease_retry_seconds
            finally:
                self.is_leader = False
                LEADER.set(0)
                await self._release()
            await self._sleep(pause)
        await self._publisher.close()

    async def _standby_round(self) -> None:
        """A standby keeps the lag gauge true (the leader may be the one that is stuck)."""
        try:
            head = await self._log.head()
            recorded = await self._log.recorded()
        except Exception as error:
            self._store_outage.failed(describe(error))
        else:
            self._store_outage.succeeded()
            self.position, self.lag = recorded, max(0, head - recorded)
            LAG.set(self.lag)
        await self._sleep(self._settings.lease_retry_seconds)

    async def _release(self) -> None:
        try:
            await self._lease_call(self._lease.release)
        except Exception as error:  # its connection is already gone: so is the lock
            log.info("relay.lease_release_failed", error=describe(error))

    async def _lease_call(self, call: Callable[[], T]) -> T:
        """A call on the lease, in a worker thread, bounded by ``store_timeout``: not answered
        by then, the lease's connection is shut down (``Lease.abandon``), which fails the
        call at once; it raises ``LeaseLost`` if it was a check of the lease, the library's
        ``OperationalError`` otherwise, and counts as a failure of the store."""
        timeout = self._settings.store_timeout
        bound = Deadline()
        try:
            with deadline(timeout, self._lease.abandon) as bound:
                return await anyio.to_thread.run_sync(call)
        except Exception as error:
            if not bound.missed:
                raise
            reason = f"the event store did not answer the lease's call within {timeout:g} s"
            self._store_outage.failed(reason)
            if isinstance(error, LeaseLost):
                raise LeaseLost(reason) from error
            raise OperationalError(reason) from error

    async def _relay_while_leading(self) -> None:
        self.position = await self._store_call(self._log.recorded())
        POSITION.set(self.position)
        self._progress_at = time.monotonic()
        log.info("relay.resuming", position=self.position)
        self._careful = True
        await self._skip_what_the_stream_holds()
        idle = self._settings.idle_poll_seconds
        retry = self._settings.retry_seconds
        confirmed_at = time.monotonic()
        while not self._stopping.is_set():
            # After a store failure the lease's connection may have died with the server:
            # make sure of the lease before publishing anything more.
            if (
                self._confirm_due
                or time.monotonic() - confirmed_at > self._settings.lease_confirm_seconds
            ):
                await self._lease_call(self._lease.confirm)
                confirmed_at, self._confirm_due = time.monotonic(), False
            try:
                # Rings from now on are for commits this read may miss: it must not sleep
                # through them.
                self._wakeup.clear()
                batch = await self._store_call(
                    self._log.read(self.position, self._settings.batch_size)
                )
                if not batch:
                    self._caught_up()
                    if self._wakeup.listening:
                        await self._wakeup.wait(self._settings.listening_poll_seconds)
                        continue
                    await self._wakeup.wait(idle)
                    idle = min(idle * 2, self._settings.max_idle_poll_seconds)
                    continue
                idle = self._settings.idle_poll_seconds
                await self._publish(batch)
                retry = self._settings.retry_seconds
                if self._wakeup.listening and len(batch) < self._settings.batch_size:
                    # The read found every event committed before it; any commit since has
                    # rung, so an empty read now would only cost a round trip.
                    await self._wakeup.wait(self._settings.listening_poll_seconds)
            except (PublishFailed, PersistenceError) as error:
                await self._after_failure(error)
                await self._sleep(retry)
                retry = min(retry * 2, self._settings.max_retry_seconds)

    async def _store_call(self, call: Awaitable[T]) -> T:
        """A call of the relay's log (each bounded by ``store_timeout``); its failures go to
        the store outage log."""
        try:
            result = await call
        except PersistenceError as error:
            self._store_outage.failed(describe(error))
            self._confirm_due = True
            raise
        self._store_outage.succeeded()
        return result

    def _caught_up(self) -> None:
        self._progress_at = time.monotonic()
        self.lag = 0
        LAG.set(0)
        if self._nc is not None and self._nc.is_connected:
            self._nats_outage.succeeded()

    async def _after_failure(self, error: Exception) -> None:
        if isinstance(error, PublishFailed):
            FAILED_BATCHES.inc()
            self._nats_outage.failed(str(error))
            # The store answers (it is NATS that failed): the lag it shows keeps growing. After
            # a failure of the store, asking it again would only delay the lease's check.
            try:
                head = await self._store_call(self._log.head())
                self.lag = max(0, head - self.position)
                LAG.set(self.lag)
            except PersistenceError:
                pass
        waited = time.monotonic() - self._progress_at
        handover = self._settings.handover_seconds
        if isinstance(error, PublishFailed) and handover and waited > handover and self.lag:
            raise HandOver(f"no batch went through for {waited:.0f} s: {error}")
        # What the stream ends with is not known now: one at a time until an event is stored.
        self._careful = True
        if isinstance(error, PublishFailed) and self.nats_connected:
            with contextlib.suppress(PersistenceError):
                await self._skip_what_the_stream_holds()

    async def _publish(self, batch: Sequence[Notification]) -> None:
        """Publish the batch pipelined, each event expecting its predecessor as the stream's
        last message, and record the position once every event is acked (stored, or acked as
        a duplicate). While careful, events go one at a time until one is stored."""
        if not self.nats_connected:
            raise PublishFailed("NATS is not connected")
        started = time.perf_counter()
        futures: list[asyncio.Future[api.PubAck]] = []
        timeout = self._settings.ack_timeout
        acks: list[api.PubAck] = []
        connection = self._publisher.connection
        try:
            async with asyncio.timeout(timeout):
                previous: Notification | None = None
                for notification in batch:
                    if self._careful:
                        # Alone in flight: its place is after whatever the stream ends with. A
                        # duplicate leaves that end unknown (another event may follow its
                        # original), a stored event makes it this one.
                        futures.append(await self._send(notification, {}))
                        acks.append(await self._while_connected(futures[-1], connection))
                        self._careful = bool(acks[-1].duplicate)
                        self._tail_seq = acks[-1].seq
                        continue
                    expected = (
                        {api.Header.EXPECTED_LAST_MSG_ID.value: message_id(previous.id)}
                        if previous is not None
                        else {api.Header.EXPECTED_LAST_SEQUENCE.value: str(self._tail_seq)}
                    )
                    futures.append(await self._send(notification, expected))
                    previous = notification
                acks += await self._while_connected(
                    asyncio.gather(*futures[len(acks) :]), connection
                )
        except TimeoutError:
            raise PublishFailed(
                f"{sum(not f.done() for f in futures) or len(batch)} of "
                f"{len(batch)} acks missing after {timeout:g} s"
            ) from None
        except Refused as error:
            raise PublishFailed(f"JetStream refused an event: {error}") from error
        except nats.errors.Error as error:
            raise PublishFailed(describe(error)) from error
        finally:
            for future in futures:  # acks that will never come, or that no one will read
                future.cancel()
        last = batch[-1].id
        self._tail_seq = acks[-1].seq
        await self._store_call(self._log.record(last))
        self.position = last
        self._progress_at = time.monotonic()
        self._nats_outage.succeeded()
        duplicates = sum(1 for ack in acks if ack.duplicate)
        PUBLISHED.inc(len(acks) - duplicates)
        DUPLICATES.inc(duplicates)
        POSITION.set(last)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if len(batch) == self._settings.batch_size:
            head = await self._store_call(self._log.head())
            self.lag = max(0, (head or last) - last)
        else:
            self.lag = 0
        LAG.set(self.lag)
        log.debug("relay.batch", size=len(batch), position=last, duplicates=duplicates)

    async def _while_connected(self, acks: Awaitable[T], connection: tuple[bool, int]) -> T:
        """``await acks``, unless the connection they were published on (``connection``, as
        the publisher saw it before) drops meanwhile: then PublishFailed at once."""
        waiting = asyncio.ensure_future(acks)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=CONNECTION_CHECK_SECONDS)
                if done:
                    return waiting.result()
                if self._publisher.connection != connection:
                    raise PublishFailed("the connection to NATS dropped with acks outstanding")
        finally:
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

    async def _send(
        self, notification: Notification, expected: dict[str, str]
    ) -> asyncio.Future[api.PubAck]:
        header = decode_header(notification.state)
        subject = subject_for(header)
        headers = {
            api.Header.MSG_ID.value: message_id(notification.id),
            api.Header.EXPECTED_STREAM.value: STREAM_NAME,
            **expected,
            "Tp-Notification-Id": str(notification.id),
            "Tp-Event-Type": notification.topic,
            **trace_headers(header.metadata),
        }
        tracer = tracing.tracer(RELAY_SERVICE)
        if tracer is None:
            return await self._publisher.publish(subject, notification.state, headers)
        # Tracing on: the publish is a span of the command's trace, and the message names it.
        span = tracing.start_span(
            tracer,
            f"publish {notification.topic}",
            headers.get(TRACEPARENT_HEADER),
            "producer",
            attributes={
                "messaging.destination.name": subject,
                "tutorpulse.notification_id": notification.id,
            },
        )
        headers[TRACEPARENT_HEADER] = tracing.traceparent_of(span)
        try:
            return await self._publisher.publish(subject, notification.state, headers)
        finally:
            tracing.end(span)

    async def _skip_what_the_stream_holds(self) -> None:
        """Record as relayed what the stream already holds past the recorded position (a batch
        whose acks were lost, whose position could not be recorded, or that was refused
        halfway), so that it is not published again: a repeat older than the duplicate window
        would be stored twice.

        The relay stores each event right after its predecessor, so the stream holds the
        events up to its last one without gaps exactly when the stream's tail, as long as the
        events the store has between the position and that last one, starts with the first of
        them; anything else (a tail the relay did not write, a purged stream, a stream left
        out of order by an older relay) is left alone and the batch is published again
        (JetStream drops repeats inside the window)."""
        try:
            # The waits on NATS are bounded here, the read of the store by its own timeout
            # (cancelled midway, a statement would wait for the server to cancel it).
            async with asyncio.timeout(self._settings.ack_timeout):
                state = (await self._js.stream_info(STREAM_NAME)).state
                if not state.last_seq:
                    return
                last = await self._streamed_id(state.last_seq)
            if last <= self.position or last - self.position > RECONCILE_LIMIT:
                return
            between = await self._store_call(
                self._log.read(self.position, RECONCILE_LIMIT, until=last)
            )
            if not between or between[-1].id != last or len(between) > state.last_seq:
                return
            async with asyncio.timeout(self._settings.ack_timeout):
                first = await self._streamed_id(state.last_seq - len(between) + 1)
            if first != between[0].id:
                return
        except (TimeoutError, nats.errors.Error, ValueError) as error:
            log.info("relay.stream_tail_unknown", error=describe(error))
            return
        await self._store_call(self._log.record(last))
        log.info("relay.already_streamed", skipped=len(between), position=last)
        self.position = last
        POSITION.set(last)

    async def _streamed_id(self, sequence: int) -> int:
        return notification_id_of(await self._js.get_msg(STREAM_NAME, sequence))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
