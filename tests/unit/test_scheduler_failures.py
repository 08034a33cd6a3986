"""How the scheduler treats a failure: the store or NATS away is waited out for as long as it
lasts (never dead-lettered), a bug is retried a few times then dead-lettered, and a body that
can never work is dead-lettered at once; a refusal by the domain is an answer."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import eventsourcing.persistence as es
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import BadRequestError, ServiceUnavailableError

from services.command.unit_of_work import ConcurrentUpdate
from services.scheduler.clock import WallClock
from services.scheduler.service import PoisonTimer, Scheduler, transient
from services.scheduler.settings import SchedulerSettings
from shared.settings import load


@dataclass
class Metadata:
    num_delivered: int
    stream: str = "TP_TIMERS"

    @dataclass
    class Sequence:
        stream: int = 7

    sequence: Sequence = field(default_factory=Sequence)


@dataclass
class Raw:
    metadata: Metadata
    subject: str = "tp.timer.fire.alpha.homework-overdue.x"
    data: bytes = b"{}"
    headers: dict[str, str] | None = None


@dataclass
class Message:
    """The part of FastStream's NatsMessage the scheduler's failure handling uses."""

    raw_message: Raw
    answers: list[tuple[str, Any]] = field(default_factory=list)

    async def nack(self, delay: float | None = None) -> None:
        self.answers.append(("nack", delay))

    async def reject(self) -> None:
        self.answers.append(("term", None))


@dataclass
class JetStream:
    published: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def publish(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        self.published.append((subject, data, headers))


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> tuple[Scheduler, JetStream]:
    settings = load(
        SchedulerSettings, {"TUTORPULSE_NATS_USER": "scheduler", "TUTORPULSE_NATS_PASSWORD": "x"}
    )
    found = Scheduler(settings, None, WallClock())  # type: ignore[arg-type]
    js = JetStream()
    monkeypatch.setattr(Scheduler, "_js", property(lambda self: js))
    return found, js


def message(deliveries: int) -> Message:
    return Message(Raw(Metadata(deliveries)))


def test_what_waiting_cures_is_transient_and_a_bug_is_not() -> None:
    assert transient(es.OperationalError("server closed the connection"))
    assert transient(sqlite3.OperationalError("database is locked"))
    assert transient(NatsTimeout())
    assert transient(ConcurrentUpdate("again"))
    assert transient(ServiceUnavailableError())
    assert not transient(BadRequestError())  # the server refused what we sent: a bug
    assert not transient(KeyError("bug"))
    assert not transient(sqlite3.OperationalError("no such table: x"))


async def test_the_store_away_is_retried_however_often_it_was_delivered(
    scheduler: tuple[Scheduler, JetStream],
) -> None:
    found, js = scheduler
    msg = message(deliveries=50)
    await found._failed(msg, es.OperationalError("connection refused"))  # type: ignore[arg-type]
    assert msg.answers[0][0] == "nack" and js.published == []
    assert found.outages.current is not None  # logged once, as an outage


async def test_a_bug_is_retried_then_dead_lettered_and_garbage_at_once(
    scheduler: tuple[Scheduler, JetStream],
) -> None:
    found, js = scheduler
    early = message(deliveries=1)
    await found._failed(early, KeyError("bug"))  # type: ignore[arg-type]
    assert [a for a, _ in early.answers] == ["nack"] and js.published == []
    last = message(deliveries=found.settings.consumers.poison_after)
    await found._failed(last, KeyError("bug"))  # type: ignore[arg-type]
    assert [a for a, _ in last.answers] == ["term"]
    [(subject, _, headers)] = js.published
    assert subject == "tp.dlq.scheduler.tp.timer.fire.alpha.homework-overdue.x"
    assert headers["Tp-Dlq-Reason"] == "KeyError: 'bug'"
    assert headers["Tp-Dlq-Deliveries"] == str(found.settings.consumers.poison_after)
    garbage = message(deliveries=1)
    await found._failed(garbage, PoisonTimer(f"not a timer: {uuid4()}"), poison=True)  # type: ignore[arg-type]
    assert [a for a, _ in garbage.answers] == ["term"]
    assert js.published[-1][2]["Tp-Dlq-Reason"].startswith("not a timer")
