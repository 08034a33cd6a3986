"""Two scheduler processes share the timers of a centre on PostgreSQL; one is killed with
SIGKILL while they fire, and copies of fired timers arrive as if two replicas fired them
together: still exactly one event per timer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.scheduler.timers import Timer, TimerKind
from shared import events
from shared.messaging import ensure_streams
from tests.builders import register_centre
from tests.integration.conftest import NatsAs
from tests.support.servers import NatsServer, PostgresServer, free_port
from tests.support.service_process import ServiceProcess, service_env
from tests.support.timers import (
    events_after,
    eventually,
    homework,
    of_type,
    relay_until,
    timers_settled,
)

pytestmark = pytest.mark.integration

HOMEWORK = 40
RATE = 300.0
"""Five minutes of the centre's day pass in a second."""


def scheduler_process(
    name: str, tmp_path: Path, nats_server: NatsServer, pg: PostgresServer, epoch: datetime
) -> ServiceProcess:
    port = free_port()
    env = service_env(
        **nats_server.env_for("scheduler"),
        **pg.env(),
        TUTORPULSE_SCHEDULER_PORT=str(port),
        TUTORPULSE_SCHEDULER_CLOCK_RATE=str(RATE),
        TUTORPULSE_SCHEDULER_CLOCK_EPOCH=epoch.isoformat(),
        TUTORPULSE_SCHEDULER_ACK_WAIT="1",
    )
    return ServiceProcess("services.scheduler", port, env, tmp_path / f"{name}.log")


async def test_two_replicas_one_killed_mid_run_record_one_event_per_timer(
    tmp_path: Path,
    nats_server: NatsServer,
    nats_as: NatsAs,
    nc: Client,
    pg: PostgresServer,
    pg_centres: TutoringCentres,
) -> None:
    await ensure_streams((await nats_as("relay")).jetstream())
    centres = pg_centres
    alpha = register_centre(centres, "alpha")
    epoch = datetime.now(UTC)
    replicas = [
        scheduler_process(name, tmp_path, nats_server, pg, epoch).start()
        for name in ("scheduler-a", "scheduler-b")
    ]
    stop = asyncio.Event()
    js = nc.jetstream()
    relay = asyncio.create_task(relay_until(js, centres, stop))
    try:
        for replica in replicas:
            await replica.until_ready_is(200)
        # Due 10 to 23 minutes from now: on the schedulers' clock, 2 to 5 s of the wall's.
        due = [
            epoch.replace(microsecond=0) + timedelta(minutes=10, seconds=20 * i)
            for i in range(HOMEWORK)
        ]
        ids = [homework(centres, alpha, moment) for moment in due]

        def overdue() -> list[events.HomeworkBecameOverdue]:
            return of_type(events_after(centres, 0), events.HomeworkBecameOverdue)

        # Mid-run: some timers have fired, most have not. One replica dies without a word.
        await eventually(lambda: len(overdue()) >= 3, "the first timers firing")
        assert len(overdue()) < HOMEWORK, "every timer fired before the kill: nothing was shown"
        replicas[0].kill()
        # And the same timers fire again, as two replicas firing together or a redelivery
        # after a kill would have them: copies of fired timers land on their fire subjects.
        for homework_id, moment in list(zip(ids, due, strict=True))[:10]:
            timer = Timer(
                centre_id="alpha",
                kind=TimerKind.HOMEWORK_OVERDUE,
                about=homework_id,
                due_at=moment,
                at=moment,
            )
            await js.publish(timer.fire_subject, msgspec.json.encode(timer), stream="TP_TIMERS")

        await eventually(lambda: len(overdue()) >= HOMEWORK, "every timer fired", timeout=60)
        await timers_settled(js)
        found = overdue()
        assert len(found) == HOMEWORK
        assert sorted(e.homework_id for e in found) == sorted(ids)
        assert all(e.actor_role == "SYSTEM" for e in found)
        assert replicas[1].alive
        # The copies were answered from the first firing's receipt: replayed, not recorded.
        replayed = sum(
            1
            for replica in replicas
            for line in replica.output().splitlines()
            if line.startswith("{")
            and json.loads(line).get("event") == "scheduler.timer_fired"
            and json.loads(line).get("outcome") == "replayed"
        )
        assert replayed >= 10

        survivor = replicas[1]
        async with httpx.AsyncClient() as client:
            fired = await survivor.metric(client, "tutorpulse_scheduler_timers_fired_total")
        assert fired is not None and fired > 0
        document = await survivor.get("/asyncapi.json")
        assert document is not None and document.json()["asyncapi"] == "3.0.0"
        addresses = {c["address"] for c in document.json()["channels"].values()}
        assert {"tp.evt.>", "tp.timer.fire.>"} <= addresses
        code, _ = survivor.terminate()
        assert code == 0
    finally:
        stop.set()
        await relay
        for replica in replicas:
            replica.stop()


async def test_without_nats_it_answers_health_waits_unready_and_stops_on_sigterm(
    tmp_path: Path, pg: PostgresServer
) -> None:
    port = free_port()
    env = service_env(
        **pg.env(),
        TUTORPULSE_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        TUTORPULSE_NATS_USER="scheduler",
        TUTORPULSE_NATS_PASSWORD="unused",
        TUTORPULSE_SCHEDULER_PORT=str(port),
    )
    process = ServiceProcess("services.scheduler", port, env, tmp_path / "alone.log").start()
    try:
        body = await process.until_ready_is(503)
        assert body["reason"] == "waiting for NATS"
        assert await process.health() == 200
        code, took = process.terminate()
        assert code == 0 and took < 5
    finally:
        process.stop()
