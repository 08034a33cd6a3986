"""An event a timer records is caused by the event that set the timer: it carries the click's
correlation id and, as causation, that event's id (nats-server, a fast clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from nats.aio.client import Client
from structlog.testing import capture_logs

from services.command.application import TutoringCentres
from services.scheduler.clock import FastClock
from services.scheduler.service import Scheduler
from services.scheduler.settings import SchedulerSettings
from shared import events
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.observability.context import trace, traced
from shared.settings import load
from tests.builders import register_centre
from tests.integration.conftest import NatsAs
from tests.support.servers import NatsServer
from tests.support.timers import eventually, help_request, relay_until, session

pytestmark = pytest.mark.integration


async def test_an_escalation_is_caused_by_the_help_request_that_set_its_timer(
    tmp_path: Path, nats_server: NatsServer, nats_as: NatsAs, nc: Client
) -> None:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    await ensure_streams((await nats_as("relay")).jetstream())
    alpha = register_centre(centres, "alpha")
    settings = load(
        SchedulerSettings,
        {
            "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
            **nats_server.env_for("scheduler"),
        },
    )
    scheduler = Scheduler(settings, centres, FastClock(rate=360.0, epoch=datetime.now(UTC)))
    stop = asyncio.Event()
    relay = asyncio.create_task(relay_until(nc.jetstream(), centres, stop))
    try:
        await scheduler.connect()
        await scheduler.start()
        live = session(
            centres,
            alpha,
            starts_at=datetime.now(UTC) - timedelta(minutes=5),
            students=("ann",),
            live=True,
        )
        with traced(trace("click-7", "click-7")):  # as the command API's request would
            help_request(centres, alpha, live, "ann")  # URGENT: escalated in ~0.3 s

        def stored() -> list[tuple[int, events.Event, events.Metadata | None]]:
            return [
                (n.id, events.decode(n.state, n.topic), events.decode_header(n.state).metadata)
                for n in centres.recorder.select_notifications(1, 10_000)
            ]

        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await eventually(
                lambda: any(isinstance(e, events.HelpRequestEscalated) for _, e, _ in stored()),
                "the escalation",
            )
        [(raised_id, _, raised)] = [
            item for item in stored() if isinstance(item[1], events.HelpRequestRaised)
        ]
        [(_, _, escalated)] = [
            item for item in stored() if isinstance(item[1], events.HelpRequestEscalated)
        ]
        assert raised == events.Metadata(correlation_id="click-7", causation_id="click-7")
        assert escalated == events.Metadata(
            correlation_id="click-7", causation_id=f"tutorpulse:{raised_id}"
        )
        [fired] = [line for line in logs if line["event"] == "scheduler.timer_fired"]
        assert fired["correlation_id"] == "click-7"
        assert fired["causation_id"] == f"tutorpulse:{raised_id}"
    finally:
        stop.set()
        await relay
        await scheduler.stop()
        centres.close()
