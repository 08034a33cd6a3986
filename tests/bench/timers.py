"""``make bench``, timers: how fast the scheduler sets timers, and how soon a due timer becomes
its event while 10,000 others wait, beside raw JetStream publishing in the same run.

1. Baseline: raw nats-py ``publish_async`` of timer-sized messages into a stream of their own,
   then the same messages as JetStream message schedules (``Nats-Schedule: @at`` a day ahead).
2. Timers set by the scheduler (its own publish path: one schedule per subject, rolled up), and
   timers derived from events through its TP_EVENTS consumer (SessionScheduled: a reminder and
   a completion each).
3. With those timers pending, sessions whose reminders fall due a few seconds ahead: the time
   from each reminder's due moment to its ``SessionReminderSent`` committed in the store (the
   event the inbox and the notifier turn into notifications; event -> inbox is the read side's
   "command -> delta" row).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import msgspec
import nats
from nats.js.api import StreamConfig

from services.command.application import TutoringCentres
from services.scheduler.clock import WallClock
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from services.scheduler.timers import Timer, TimerKind
from shared import events
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.bench.read_side import streams_afresh
from tests.builders import register_centre
from tests.support.servers import NatsServer
from tests.support.timers import relay_until, session

PENDING = 10_000
FROM_EVENTS = 1_000
DUE_SOON = 100


async def _rate(count: int, action: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await action()
    return count / (time.perf_counter() - started)


async def raw_publish(url: str, count: int, scheduled: bool) -> float:
    """Messages per second into a stream of their own, all acknowledged."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    name = "BENCH_SCHEDULES" if scheduled else "BENCH_TIMERS_RAW"
    await js.add_stream(StreamConfig(name=name, subjects=[f"bench.{name}.>"]))
    if scheduled:  # nats-py's StreamConfig has no field for it: the JSON API has
        await nc.request(
            f"$JS.API.STREAM.UPDATE.{name}",
            msgspec.json.encode(
                {
                    "name": name,
                    "subjects": [f"bench.{name}.>"],
                    "allow_msg_schedules": True,
                    "allow_rollup_hdrs": True,
                    "storage": "file",
                }
            ),
        )
    body = msgspec.json.encode({"at": datetime.now(UTC).isoformat(), "about": str(uuid4())})
    due = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def publish_all() -> None:
        for i in range(count):
            headers = (
                {
                    "Nats-Schedule": f"@at {due}",
                    "Nats-Schedule-Target": f"bench.{name}.fire.{i}",
                    "Nats-Rollup": "sub",
                }
                if scheduled
                else None
            )
            await js.publish_async(f"bench.{name}.plan.{i}", body, headers=headers)
        await js.publish_async_completed()

    try:
        return await _rate(count, publish_all)
    finally:
        await js.delete_stream(name)
        await nc.close()


async def run(nats_server: NatsServer, work: Path) -> list[str]:
    """The report's section on timers."""
    baseline = await raw_publish(nats_server.url, PENDING, scheduled=False)
    schedules = await raw_publish(nats_server.url, PENDING, scheduled=True)

    store_path = work / "timers.sqlite"
    centres = TutoringCentres(load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(store_path)}))
    nc = await nats.connect(nats_server.url)
    await streams_afresh(nc.jetstream())
    settings = load(
        SchedulerSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(store_path),
            "TUTORPULSE_LOG_LEVEL": "WARNING",
            **nats_server.env_for("scheduler"),
        },
    )
    scheduler = Scheduler(settings, centres, WallClock())
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_until(nc.jetstream(), centres, stop))
    try:
        await scheduler.connect()
        await scheduler.start()
        centre = register_centre(centres, "timers")
        far = datetime.now(UTC) + timedelta(days=30)

        async def set_directly() -> None:
            for _ in range(PENDING):
                await scheduler.set(
                    Timer(
                        centre_id="timers",
                        kind=TimerKind.HOMEWORK_OVERDUE,
                        about=uuid4(),
                        due_at=far,
                        at=far,
                        student_id=centre["ann"].user_id,
                    )
                )

        direct = await _rate(PENDING, set_directly)

        before = scheduler.tally.timers_set
        started = time.perf_counter()
        for i in range(FROM_EVENTS):
            session(centres, centre, starts_at=far + timedelta(hours=i), students=())
        deadline = time.monotonic() + 120
        while scheduler.tally.timers_set - before < 2 * FROM_EVENTS:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the scheduler set {scheduler.tally.timers_set - before} of "
                    f"{2 * FROM_EVENTS} timers from events in 120 s"
                )
            await asyncio.sleep(0.01)
        derived = (scheduler.tally.timers_set - before) / (time.perf_counter() - started)

        # Reminders falling due from 5 s ahead, one every 20 ms, while the others wait.
        lead = timedelta(minutes=15)
        first_due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        due: dict[str, datetime] = {}
        for i in range(DUE_SOON):
            moment = first_due + timedelta(milliseconds=20 * i)
            session_id = session(centres, centre, starts_at=moment + lead, students=())
            due[str(session_id)] = moment
        position = 0
        latencies: list[float] = []
        deadline = time.monotonic() + 120
        while len(latencies) < DUE_SOON and time.monotonic() < deadline:
            for notification in centres.recorder.select_notifications(position + 1, 10_000):
                position = notification.id
                if notification.topic == "SessionReminderSent":
                    reminder = events.decode(notification.state, notification.topic)
                    assert isinstance(reminder, events.SessionReminderSent)
                    moment = due[str(reminder.session_id)]
                    latencies.append((reminder.occurred_at - moment).total_seconds() * 1000)
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await relay
        await scheduler.stop()
        await nc.close()
        centres.close()

    out = [
        "",
        "## Timers",
        "",
        "nats-server on 127.0.0.1 (the same process as above); the scheduler in-process on a "
        "SQLite event store, its commands as SYSTEM.",
        "",
        "| what | count | per second | vs. raw publish |",
        "|---|---:|---:|---:|",
        f"| raw nats-py publish_async, plain messages (baseline) | {PENDING} | {baseline:,.0f} "
        "| baseline |",
        f"| raw publish_async as message schedules (@at a day ahead, rolled up) | {PENDING} "
        f"| {schedules:,.0f} | {schedules / baseline:.2f}x |",
        f"| timers set by the scheduler (one acknowledged publish each) | {PENDING} "
        f"| {direct:,.0f} | {direct / baseline:.2f}x |",
        f"| timers derived from events (sessions scheduled in-process, relayed, consumed "
        "one event at a time) "
        f"| {2 * FROM_EVENTS} | {derived:,.0f} | {derived / baseline:.2f}x |",
        "",
    ]
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        out.append(
            f"Due -> SessionReminderSent committed, {len(latencies)} reminders due 20 ms apart "
            f"with {PENDING + 2 * FROM_EVENTS} timers pending: p50 {q[49]:.0f} ms, "
            f"p90 {q[89]:.0f} ms, p99 {q[98]:.0f} ms, max {max(latencies):.0f} ms."
        )
    else:
        out.append(f"Only {len(latencies)} of {DUE_SOON} due reminders were recorded in 120 s.")
    return out
