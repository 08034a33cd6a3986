"""One projection replica in a test process: the service on a read store, with real JetStream
messages whose acknowledgements, change notices and dead letters go to a recording client
instead of a server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.projections.service import ProjectionService, Settings
from shared import events as ev
from shared.readmodels import projector
from shared.readmodels.store import ReadStore, Transaction

Item = tuple[ev.Event, int]
"""An event and its notification id."""


class Recorder:
    """Stands for the NATS client (acks, notices) and its JetStream context (dead letters)."""

    def __init__(self) -> None:
        self.acks: list[tuple[str, bytes]] = []
        self.dead: list[tuple[str, bytes, dict[str, str]]] = []
        self.notices: list[tuple[str, dict[str, str]]] = []
        """The change notices, with their headers."""
        self.refuse_dead_letters = False
        self.is_connected = True

    def jetstream(self) -> Recorder:
        return self

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> Any:
        if subject.startswith("tp.delta."):
            self.notices.append((subject, dict(headers or {})))
        if subject.startswith("tp.dlq."):
            if self.refuse_dead_letters:
                raise TimeoutError("nats: timeout")
            self.dead.append((subject, payload, dict(headers or {})))
            return SimpleNamespace(seq=len(self.dead), duplicate=False)
        if subject.startswith("$JS.ACK."):
            self.acks.append((subject, payload))
        return None

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 1.0) -> None:
        self.acks.append((subject, payload or b"+ACK"))

    async def consumer_info(self, stream: str, durable: str) -> Any:
        return SimpleNamespace(ack_floor=None, num_pending=0, num_ack_pending=0)

    async def stream_info(self, stream: str, subjects_filter: str | None = None) -> Any:
        return SimpleNamespace(state=SimpleNamespace(messages=len(self.dead), subjects={}))

    def answers(self, message: Msg) -> list[bytes]:
        return [payload for reply, payload in self.acks if reply == message.reply]

    def decisions(self, message: Msg) -> list[bytes]:
        """The answers that decide what becomes of the message (ack, negative ack, terminate),
        without the in-progress acks a replica sends every third of ``ack_wait`` for as long as
        it holds the message: how many of those a batch needs depends on how busy the machine
        is, not on what the service decided."""
        return [answer for answer in self.answers(message) if answer != Msg.Ack.Progress]


def delivered(client: Recorder, item: Item, deliveries: int, sequence: int = 7) -> Msg:
    """``item`` as JetStream delivers it for the ``deliveries``-th time, acking to ``client``."""
    event, notification_id = item
    reply = (
        f"$JS.ACK.TP_EVENTS.projections.{deliveries}.{sequence}.{sequence}.1700000000000000000.0"
    )
    return Msg(
        _client=cast(Client, client),  # the message acks through the recorder
        subject=f"tp.evt.{event.centre_id}.x.y.{event.type_name}",
        reply=reply,
        data=ev.encode(event),
        headers={
            "Nats-Msg-Id": f"tutorpulse:{notification_id}",
            "Nats-Expected-Stream": "TP_EVENTS",
            "Tp-Notification-Id": str(notification_id),
            "Tp-Event-Type": event.type_name,
        },
    )


class UnreachableStore:
    """A read store whose database cannot be reached (a disk that fails, say)."""

    def __init__(self, store: ReadStore) -> None:
        self._store = store
        self.down = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextmanager
    def transaction(
        self, generation: int | None = None, *, trust: bool = False
    ) -> Iterator[Transaction]:
        if self.down:
            raise sqlite3.OperationalError("disk I/O error")
        with self._store.transaction(generation, trust=trust) as tx:
            yield tx


def projection_service(
    store: ReadStore | UnreachableStore, client: Recorder, settings: Settings | None = None
) -> ProjectionService:
    """The service on ``store``, talking to NATS through ``client`` (both stand-ins
    for the real ones: the service uses only the parts they have)."""
    return ProjectionService(cast(ReadStore, store), cast(Client, client), settings)


def version(store: ReadStore | UnreachableStore, aggregate_id: UUID) -> int:
    """The version of ``aggregate_id`` the read store has applied."""
    with store.transaction() as tx:
        return tx.aggregate_version(str(aggregate_id))


def session_of(history: list[Item]) -> list[Item]:
    """The events of the first session of ``history`` with several students, in order."""
    first = next(
        e
        for e, _ in history
        if e.type_name == "SessionScheduled"
        and sum(str(x.aggregate_id) == str(e.aggregate_id) for x, _ in history) >= 4
    )
    return [item for item in history if str(item[0].aggregate_id) == str(first.aggregate_id)]


def before(history: list[Item], item: Item) -> list[Item]:
    """The history up to (not including) ``item``."""
    return history[: history.index(item)]


def fail_enrolments(monkeypatch: pytest.MonkeyPatch, error: Exception | None = None) -> None:
    """Every ``StudentEnrolled`` fails to apply, with ``error``."""

    def failing(docs: projector.Batch, event: ev.Event) -> None:
        raise error or ValueError("year 0202 cannot be stored")

    enrolled: type[ev.Event] = ev.StudentEnrolled
    monkeypatch.setitem(projector._HANDLERS, enrolled, failing)


def nak_delay(answer: bytes) -> float:
    """The delay a negative ack asks for, in seconds."""
    assert answer.startswith(b"-NAK"), answer
    return float(json.loads(answer[5:])["delay"]) / 1e9
