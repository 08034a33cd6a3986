"""The scheduler service: timers derived from events, kept in JetStream, fired as commands.

Two durable consumers named ``scheduler``, shared by every replica (none is special):

* on ``TP_EVENTS``, :meth:`Scheduler.on_event` turns each event into the timers it sets, moves
  or cancels (:func:`services.scheduler.timers.plans_for`): a timer is a message schedule on
  its own subject of ``TP_TIMERS``, published again to move it (roll-up) and purged to cancel
  it. This consumer lets one event be in flight at a time, so the plans of one session are
  made in the order its events happened (a late re-plan never overwrites a newer one);
* on ``TP_TIMERS``'s fired timers (``tp.timer.fire.>``), :meth:`Scheduler.on_fire` issues the
  timer's command through :meth:`TutoringCentres.handle` as SYSTEM of the timer's centre, with
  an idempotency key derived from the timer, and acknowledges after the command: a timer fired
  twice (two replicas, a redelivery after a kill -9) records its event once.

The store or NATS away is waited out (retried with back-off, logged once per outage, never
dead-lettered); an event or timer that keeps failing otherwise goes to ``TP_DLQ`` after
``TUTORPULSE_SCHEDULER_POISON_AFTER`` attempts, as the projection service does
(``tp.dlq.scheduler.<subject>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
import structlog
from faststream import AckPolicy
from faststream.nats import (
    ConsumerConfig,
    DeliverPolicy,
    JStream,
    NatsBroker,
    NatsMessage,
    NatsUserPassword,
    PullSub,
    Schedule,
)
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError
from prometheus_client import Counter, Histogram

from services.command.application import TutoringCentres
from services.command.commands.base import Command
from services.command.domain.aggregate import DomainError, NotFound
from services.command.domain.directory import Centre, centre_aggregate_id
from services.command.idempotency import KeyReused
from services.command.unit_of_work import ConcurrentUpdate, load
from services.consumer_pending import Consumer, ConsumerPending
from services.scheduler.clock import Clock
from services.scheduler.settings import SchedulerSettings
from services.scheduler.timers import (
    FIRE_PREFIX,
    NEEDS_LEAD_TIME,
    PLAN_PREFIX,
    Cancel,
    MoveSessionReminders,
    Plan,
    Timer,
    TimerKind,
    planned_subjects,
    plans_for,
    session_reminder,
)
from shared import events
from shared.events import SESSION_REMINDER_MINUTES
from shared.http.problems import store_unavailable
from shared.messaging import fetch_timeouts
from shared.messaging.auth import (
    DLQ_STREAM,
    EVENTS_STREAM,
    SCHEDULER_CONSUMER,
    TIMERS_STREAM,
    inbox_prefix,
)
from shared.messaging.nats import ConnectionLog, resolve_credentials
from shared.observability import context
from shared.observability.outage import OutageLog
from shared.tenancy.permissions import system_actor

log = structlog.get_logger(__name__)

EVENTS_HANDLED = Counter(
    "tutorpulse_scheduler_events_total", "Events the scheduler read, by outcome", ["outcome"]
)
TIMERS_SET = Counter("tutorpulse_scheduler_timers_set_total", "Timers set or moved", ["kind"])
TIMERS_CANCELLED = Counter(
    "tutorpulse_scheduler_timers_cancelled_total", "Timers cancelled", ["kind"]
)
TIMERS_FIRED = Counter(
    "tutorpulse_scheduler_timers_fired_total",
    "Timers fired, by what their command did: recorded (an event), no-op (it no longer "
    "applied), replayed (fired before: the first answer), refused, retried, dead-lettered",
    ["kind", "outcome"],
)
FIRE_LAG = Histogram(
    "tutorpulse_scheduler_fire_lag_seconds",
    "From the moment a timer was due (on the wall clock) to its command's answer",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

DLQ_PREFIX = "tp.dlq"

CONSUMERS = (
    Consumer(EVENTS_STREAM, SCHEDULER_CONSUMER),
    Consumer(TIMERS_STREAM, SCHEDULER_CONSUMER),
)
"""The scheduler's two durable consumers, whose backlog ``tutorpulse_consumer_pending`` says."""


def dead_letter_subject(subject: str) -> str:
    return f"{DLQ_PREFIX}.{SCHEDULER_CONSUMER}.{subject}"


def transient(error: BaseException) -> bool:
    """A failure that waiting cures (the store or NATS away, a conflict): retried for as long
    as it lasts, never dead-lettered."""
    if isinstance(error, APIError):  # the server answered: only "unavailable" passes
        return isinstance(error, ServiceUnavailableError)
    return store_unavailable(error) or isinstance(
        error, NatsError | TimeoutError | ConcurrentUpdate
    )


class _Caused(msgspec.Struct, frozen=True):
    metadata: events.Metadata | None = None


_decode_cause = msgspec.json.Decoder(_Caused).decode


def _caused_by(raw: Msg) -> context.Trace | None:
    """What an event's timers are caused by: the event (its ``Nats-Msg-Id``), within the
    correlation of the click that stored it (its own id for an event stored without one)."""
    event_id = context.valid_request_id((raw.headers or {}).get("Nats-Msg-Id"))
    if event_id is None:
        return None
    metadata = events.decode_header(raw.data).metadata
    correlation = metadata.correlation_id if metadata is not None else None
    return context.trace(correlation or event_id, event_id)


def _cause_of_timer(data: bytes) -> context.Trace | None:
    """The cause a timer was set with (none for a timer set before timers carried it)."""
    try:
        metadata = _decode_cause(data).metadata
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if metadata is None or not metadata.correlation_id or not metadata.causation_id:
        return None
    return context.trace(metadata.correlation_id, metadata.causation_id)


class PoisonTimer(Exception):
    """A fired timer that can never run (its body is not a timer): dead-lettered at once."""


@dataclass
class Tally:
    """What this replica did, for ``/ready``'s details."""

    events: int = 0
    timers_set: int = 0
    timers_cancelled: int = 0
    fired: dict[str, int] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "timersSet": self.timers_set,
            "timersCancelled": self.timers_cancelled,
            "fired": dict(self.fired),
        }


class Scheduler:
    """One replica: its FastStream broker (the two consumers), the event store it issues
    commands to, and its clock."""

    def __init__(self, settings: SchedulerSettings, centres: TutoringCentres, clock: Clock) -> None:
        self.settings = settings
        self.centres = centres
        self.clock = clock
        self.tally = Tally()
        self.outages = OutageLog("scheduler.dependency", service="scheduler")
        self._stopping = asyncio.Event()
        self._watching: asyncio.Task[None] | None = None
        fetch_timeouts.install()  # FastStream's pull loops take every fetch timeout calmly
        nats = settings.nats
        who = resolve_credentials(nats.servers[0], configured=nats.credentials)
        self.user = who.user if who is not None else None
        self.connection = ConnectionLog("tutorpulse-scheduler", nats.url, self.user or "")
        self.broker = NatsBroker(
            nats.servers,
            name="tutorpulse-scheduler",
            security=NatsUserPassword(who.user, who.password) if who is not None else None,
            inbox_prefix=inbox_prefix(who.user) if who is not None else "_INBOX",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=self.connection.on_error,
            disconnected_cb=self.connection.on_disconnect,
            reconnected_cb=self.connection.on_reconnect,
            log_level=logging.DEBUG,  # a line per message only when asked for
            graceful_timeout=10.0,
            description="tutorpulse's scheduler: timers derived from events, kept as "
            "JetStream message schedules in TP_TIMERS, fired as commands by SYSTEM",
        )
        consumers = settings.consumers
        # Fetched messages come back on this user's inbox (the only one it may subscribe to).
        inbox = f"{inbox_prefix(who.user) if who is not None else '_INBOX'}.".encode()
        self.broker.subscriber(
            "tp.evt.>",
            stream=JStream(EVENTS_STREAM, declare=False),
            durable=SCHEDULER_CONSUMER,
            inbox_prefix=inbox,
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            config=ConsumerConfig(
                durable_name=SCHEDULER_CONSUMER,
                filter_subjects=planned_subjects(),
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=consumers.ack_wait,
                max_ack_pending=1,
                max_deliver=-1,
            ),
            ack_policy=AckPolicy.MANUAL,
            title="scheduler/events",
            description="The events of TP_EVENTS that set, move or cancel a timer (the "
            "consumer's filter: docs/scheduler.md). One at a time across the replicas.",
        )(self.on_event)
        self.broker.subscriber(
            f"{FIRE_PREFIX}.>",
            stream=JStream(TIMERS_STREAM, declare=False),
            durable=SCHEDULER_CONSUMER,
            inbox_prefix=inbox,
            pull_sub=PullSub(batch_size=consumers.fire_batch, timeout=1.0),
            config=ConsumerConfig(
                durable_name=SCHEDULER_CONSUMER,
                ack_wait=consumers.ack_wait,
                max_deliver=-1,
            ),
            ack_policy=AckPolicy.MANUAL,
            title="scheduler/fire",
            description="A timer the server fired at its time (tp.timer.fire.<centre>.<kind>."
            "<id>, the body a Timer): its command is issued as SYSTEM, then it is acknowledged.",
        )(self.on_fire)
        self.plans = self.broker.publisher(
            f"{PLAN_PREFIX}.{{centre}}.{{kind}}.{{id}}",
            stream=JStream(TIMERS_STREAM, declare=False),
            title="scheduler/plan",
            description="A timer as a message schedule (Nats-Schedule: @at <time>, "
            "Nats-Schedule-Target: its tp.timer.fire subject, Nats-Rollup: sub); purged to "
            "cancel it.",
        )

    # --- events -> timers ------------------------------------------------------------------

    async def on_event(self, msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            event = events.decode(raw.data)
        except events.UnknownEventType:  # a newer producer's type: no timer of ours
            EVENTS_HANDLED.labels("unknown").inc()
            await msg.ack()
            return
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            await self._failed(msg, PoisonTimer(f"not an event: {error}"), poison=True)
            return
        try:
            # The timers it sets remember what set them (shared.observability.context).
            with context.traced(_caused_by(raw)):
                for plan in await self.plan(event):
                    await self.apply(plan)
        except Exception as error:
            await self._failed(msg, error)
            return
        self.outages.succeeded()
        self.tally.events += 1
        EVENTS_HANDLED.labels("handled").inc()
        await msg.ack()

    async def plan(self, event: events.Event) -> list[Plan]:
        lead = SESSION_REMINDER_MINUTES
        if isinstance(event, NEEDS_LEAD_TIME):
            lead = await anyio.to_thread.run_sync(self._lead_minutes, event.centre_id)
        return plans_for(
            event, now=self.clock.now(), lead_minutes=lead, settings=self.settings.timers
        )

    def _lead_minutes(self, centre_id: str) -> int:
        try:
            centre = load(self.centres, Centre, centre_aggregate_id(centre_id))
        except NotFound:
            return SESSION_REMINDER_MINUTES
        return centre.session_reminder_minutes

    async def apply(self, plan: Plan) -> None:
        if isinstance(plan, Timer):
            await self.set(plan)
        elif isinstance(plan, Cancel):
            await self.cancel(plan)
        else:
            await self.move_session_reminders(plan)

    async def set(self, timer: Timer) -> None:
        """Set the timer, or move it: a schedule replaces the last one on its subject. Set
        while an event is handled, it carries that event's correlation id and, as causation,
        the event's id (its ``Nats-Msg-Id``) under ``metadata``, as events do."""
        data = msgspec.json.encode(timer)
        cause = context.current()
        if cause is not None:
            data = data[:-1] + cause.stored
        await self.broker.publish(
            data,
            timer.plan_subject,
            headers={"Nats-Rollup": "sub", "content-type": "application/json"},
            stream=TIMERS_STREAM,
            timeout=5.0,
            schedule=Schedule(self.clock.wall_time(timer.due_at), timer.fire_subject),
        )
        self.tally.timers_set += 1
        TIMERS_SET.labels(timer.kind).inc()
        log.debug("scheduler.timer_set", subject=timer.plan_subject, due_at=str(timer.due_at))

    async def cancel(self, cancel: Cancel) -> None:
        await self._js.purge_stream(TIMERS_STREAM, subject=cancel.plan_subject)
        self.tally.timers_cancelled += 1
        TIMERS_CANCELLED.labels(cancel.kind).inc()

    async def move_session_reminders(self, move: MoveSessionReminders) -> None:
        """Every session reminder of the centre still waiting moves to the new lead time."""
        pattern = f"{PLAN_PREFIX}.{move.centre_id}.{TimerKind.SESSION_REMINDER}.*"
        info = await self._js.stream_info(TIMERS_STREAM, subjects_filter=pattern)
        now = self.clock.now()
        for subject in info.state.subjects or {}:
            try:
                stored = await self._js.get_last_msg(TIMERS_STREAM, subject)
            except NotFoundError:  # fired or cancelled meanwhile
                continue
            old = msgspec.json.decode(stored.data or b"", type=Timer)
            await self.apply(session_reminder(old.centre_id, old.about, old.at, move.minutes, now))

    # --- timers -> commands ----------------------------------------------------------------

    async def on_fire(self, msg: NatsMessage) -> None:
        raw = msg.raw_message
        try:
            timer = msgspec.json.decode(raw.data, type=Timer)
            if raw.subject != timer.fire_subject:
                raise PoisonTimer(f"a timer for {timer.fire_subject} fired on {raw.subject}")
            command = timer.command()
        except (msgspec.DecodeError, msgspec.ValidationError, PoisonTimer, ValueError) as error:
            await self._failed(msg, PoisonTimer(f"not a timer: {error}"), poison=True)
            return
        # What the timer's command stores carries what set the timer, and so do its lines.
        cause = _cause_of_timer(raw.data)
        fields = (
            {}
            if cause is None
            else {"correlation_id": cause.correlation_id, "causation_id": cause.causation_id}
        )
        with context.traced(cause), structlog.contextvars.bound_contextvars(**fields):
            await self._fire(msg, raw, timer, command)

    async def _fire(self, msg: NatsMessage, raw: Msg, timer: Timer, command: Command) -> None:
        actor = system_actor(timer.centre_id)
        try:
            result = await anyio.to_thread.run_sync(
                lambda: self.centres.handle(actor, command, idempotency=timer.idempotency_key)
            )
        except (DomainError, KeyReused) as error:
            # An answer, not a failure: the thing is gone, or not of this centre.
            self._fired(timer, "refused")
            log.warning(
                "scheduler.timer_refused",
                subject=raw.subject,
                reason=getattr(error, "detail", str(error)),
            )
            await msg.ack_sync()
            return
        except Exception as error:
            await self._failed(msg, error, kind=timer.kind)
            return
        self.outages.succeeded()
        outcome = (
            "replayed"
            if result.replayed
            else ("recorded" if result.body.get("recorded") else "no-op")
        )
        self._fired(timer, outcome)
        lag = datetime.now(UTC) - self.clock.wall_time(timer.due_at)
        FIRE_LAG.observe(max(0.0, lag.total_seconds()))
        log.info(
            "scheduler.timer_fired",
            kind=str(timer.kind),
            about=str(timer.about),
            centre=timer.centre_id,
            outcome=outcome,
            position=result.position,
        )
        await msg.ack_sync()

    def _fired(self, timer: Timer, outcome: str) -> None:
        self.tally.fired[outcome] = self.tally.fired.get(outcome, 0) + 1
        TIMERS_FIRED.labels(timer.kind, outcome).inc()

    # --- failures --------------------------------------------------------------------------

    async def _failed(
        self,
        msg: NatsMessage,
        error: Exception,
        *,
        poison: bool = False,
        kind: TimerKind | None = None,
    ) -> None:
        """Try again later with back-off: for as long as a transient failure lasts (logged once
        per outage), else up to the ``poison_after``-th attempt; then (at once when it can
        never work) dead-letter it."""
        raw = msg.raw_message
        attempts = raw.metadata.num_delivered or 1
        consumers = self.settings.consumers
        text = " ".join(str(error).split())
        reason = text if isinstance(error, PoisonTimer) else f"{type(error).__name__}: {text}"
        if transient(error):
            self.outages.failed(reason)
            if kind is not None:
                TIMERS_FIRED.labels(kind, "retried").inc()
            await msg.nack(delay=min(consumers.max_backoff, 0.25 * 2 ** min(attempts - 1, 5)))
            return
        if not poison and attempts < consumers.poison_after:
            delay = min(consumers.max_backoff, 0.25 * 2 ** (attempts - 1))
            log.warning("scheduler.retrying", subject=raw.subject, reason=reason, attempt=attempts)
            if kind is not None:
                TIMERS_FIRED.labels(kind, "retried").inc()
            await msg.nack(delay=delay)
            return
        try:
            await self._dead_letter(raw, reason, attempts)
        except Exception as error:  # not dead-lettered: give it back, try again later
            log.error("scheduler.dead_letter_failed", subject=raw.subject, error=str(error))
            await msg.nack(delay=consumers.max_backoff)
            return
        if kind is not None:
            TIMERS_FIRED.labels(kind, "dead-lettered").inc()
        EVENTS_HANDLED.labels("dead-lettered").inc()
        log.error("scheduler.dead_lettered", subject=raw.subject, reason=reason, attempts=attempts)
        await msg.reject()

    async def _dead_letter(self, raw: Msg, reason: str, attempts: int) -> None:
        sequence = raw.metadata.sequence.stream if raw.metadata.sequence else 0
        stream = raw.metadata.stream or ""
        headers = {
            "Nats-Msg-Id": f"dlq:{SCHEDULER_CONSUMER}:{stream}:{sequence}",
            "Tp-Dlq-Subject": raw.subject[:1000],
            "Tp-Dlq-Stream": stream,
            "Tp-Dlq-Stream-Seq": str(sequence),
            "Tp-Dlq-Deliveries": str(attempts),
            "Tp-Dlq-Reason": " ".join(reason.split())[:500],
            "Tp-Dlq-Consumer": SCHEDULER_CONSUMER,
            "Tp-Dlq-At": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        for name in ("Tp-Notification-Id", "Tp-Event-Type"):
            if raw.headers and raw.headers.get(name):
                headers[name] = raw.headers[name]
        await self._js.publish(dead_letter_subject(raw.subject), raw.data, headers=headers)

    @property
    def _js(self) -> Any:
        return self.broker.config.connection_state.stream

    # --- running ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to NATS (waits as long as it is away; nats-py retries for ever)."""
        await self.broker.connect()
        self.connection.on_connect()

    async def wait_for_streams(self, stopping: asyncio.Event) -> bool:
        from shared.messaging import wait_for_streams

        return await wait_for_streams(
            self._js, stopping, names=(EVENTS_STREAM, TIMERS_STREAM, DLQ_STREAM)
        )

    async def start(self) -> None:
        """Start both consumers (creating them the first time), and the reading of their
        pending messages for ``tutorpulse_consumer_pending`` (``services.consumer_pending``)."""
        await self.broker.start()
        self._stopping.clear()
        pending = ConsumerPending(self._js, CONSUMERS)
        self._watching = asyncio.create_task(pending.run(self._stopping))

    async def stop(self) -> None:
        self._stopping.set()
        watching, self._watching = self._watching, None
        if watching is not None:  # a reading NATS does not answer is not waited for
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        await self.broker.stop()
