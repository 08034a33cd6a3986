"""A poisoned event on a real nats-server: dead-lettered, the read side goes on, the CLI
lists it, and after the fix a replay leaves the read models equal to a rebuild."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.command.application import TutoringCentres
from services.command.commands.help_requests import AcknowledgeHelpRequest, RaiseHelpRequest
from services.command.commands.seats import AttendanceRecord, MarkAttendance, RecordPresence
from services.command.seed import seed
from services.projections.service import ProjectionService, Settings, count_dead_letters
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.messaging import connect
from shared.messaging.auth import DLQ_STREAM
from shared.readmodels import projector
from shared.readmodels.store import ReadStore
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import demo_person
from tests.integration.streams import read_stream
from tests.integration.test_projection_service import eventually, reference, relaying, running
from tests.readside import read_store
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[TutoringCentres]:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    yield centres
    centres.close()


def actor(handle: str) -> Actor:
    person = demo_person(handle)
    return Actor(user_id=person.id, role=person.role, centre_id="main-campus")


@asynccontextmanager
async def projecting_as_service(
    store: ReadStore, nats_server: NatsServer, settings: Settings | None = None
) -> AsyncIterator[ProjectionService]:
    """The projection service, logged in to NATS as its own user (its permissions apply)."""
    client = await connect(
        nats_server.address,
        name="test-projections",
        credentials=nats_server.credentials_for("projections"),
    )
    service = ProjectionService(store, client, settings)
    try:
        async with running(service.run, service.stop):
            yield service
    finally:
        await client.close()


async def cli(
    nats_server: NatsServer, read_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m services.projections.dead_letters …`` as an operator runs it (the ops user)."""
    env = {
        **os.environ,
        **nats_server.env_for("ops"),
        "TUTORPULSE_READ_STORE": "sqlite",
        "TUTORPULSE_READ_SQLITE_PATH": str(read_path),
        "TUTORPULSE_LOG_LEVEL": "WARNING",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.projections.dead_letters", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass(frozen=True)
class DeadLetter:
    """A message of TP_DLQ: every one has a sequence, a subject, data and headers."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]


async def dlq(js: JetStreamContext) -> list[DeadLetter]:
    """The messages in TP_DLQ, by sequence."""
    found: list[DeadLetter] = []
    sequence = 1
    while True:
        try:
            message = await js.get_msg(DLQ_STREAM, sequence, subject="tp.dlq.>", next=True)
        except NotFoundError:  # past the last one
            return found
        assert message.seq and message.subject and message.data is not None and message.headers
        found.append(DeadLetter(message.seq, message.subject, message.data, message.headers))
        sequence = message.seq + 1


async def test_a_poisoned_event_is_dead_lettered_the_read_side_goes_on_a_replay_equals_a_rebuild(
    centres: TutoringCentres,
    nats_server: NatsServer,
    nc: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = seed(centres)
    live = sessions["Intro to Programming - Live Q&A"]
    michael = actor("michael")
    raised = centres.handle(michael, RaiseHelpRequest(session_id=live, message="Stuck on loops"))
    request_id = UUID(raised.body["helpRequestId"])
    centres.handle(
        actor("john"), AcknowledgeHelpRequest(session_id=live, request_id=request_id)
    )  # needs the request: fails too
    centres.handle(
        michael, RecordPresence(session_id=live, event=ev.PresenceKind.JOIN)
    )  # same seat, independent of it

    real = projector._HANDLERS[ev.HelpRequestRaised]

    def failing(docs: projector.Batch, event: ev.HelpRequestRaised) -> None:
        if event.help_request_id == request_id:
            raise ValueError("this help request cannot be projected")
        real(docs, event)

    raised_type: type[ev.Event] = ev.HelpRequestRaised
    monkeypatch.setitem(projector._HANDLERS, raised_type, failing)
    read_path = tmp_path / "read.sqlite"
    store = read_store(tmp_path)
    js = nc.jetstream()

    async with (
        relaying(centres, nc, tmp_path),
        projecting_as_service(store, nats_server, Settings(poison_after=2)) as service,
    ):
        await eventually(lambda: _reached(store, centres.position), timeout=60)
        assert await count_dead_letters(js) == 2
        # The seat's later, independent event is in; the two events about the request are not.
        seat = store.get("session", str(live))
        assert seat is not None
        row = seat.doc["students"][str(michael.user_id)]
        assert row["presence"]["last"] == "JOIN" and str(request_id) not in row["helpRequests"]
        # The service goes on: a later command on the same seat is applied.
        later = centres.handle(
            actor("john"),
            MarkAttendance(
                session_id=live,
                records=[
                    AttendanceRecord(
                        student_id=michael.user_id, status=ev.AttendanceStatus.LATE, notes="bus"
                    )
                ],
            ),
        )
        await eventually(lambda: _reached(store, later.position), timeout=30)
        assert (await service.readiness())["deadLettersWaiting"] == 2

    streamed = {event.notification_id: event for event in await read_stream(js)}
    letters = await dlq(js)
    assert [m.headers["Tp-Event-Type"] for m in letters] == [
        "HelpRequestRaised",
        "HelpRequestAcknowledged",
    ]
    first = letters[0]
    original = streamed[int(first.headers["Tp-Notification-Id"])]
    assert first.subject == f"tp.dlq.projections.{original.subject}"
    assert first.headers["Tp-Dlq-Subject"] == original.subject
    assert first.headers["Tp-Dlq-Msg-Id"] == original.msg_id
    assert first.headers["Tp-Dlq-Reason"] == "ValueError: this help request cannot be projected"
    assert first.headers["Tp-Dlq-Deliveries"] == "2"
    assert first.headers["Tp-Dlq-Consumer"] == "projections"
    assert first.data == original.data
    assert not any(name.startswith("Nats-Expected") for name in first.headers)
    assert "KeyError" in letters[1].headers["Tp-Dlq-Reason"]

    listed = await cli(nats_server, read_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["sequence"], r["eventType"], r["subject"]) for r in rows] == [
        (m.seq, m.headers["Tp-Event-Type"], m.headers["Tp-Dlq-Subject"]) for m in letters
    ]
    assert rows[0]["reason"] == "ValueError: this help request cannot be projected"
    shown = await cli(nats_server, read_path, "show", str(first.seq))
    assert (
        shown.returncode == 0
        and str(request_id) in shown.stdout
        and "Tp-Dlq-Reason" in shown.stdout
    )

    monkeypatch.undo()  # the fix is released
    replayed = await cli(nats_server, read_path, "replay", "--all")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2 replayed, 0 kept" in replayed.stdout
    assert await count_dead_letters(js) == 0
    assert store.dump(store.generation()) == reference(centres, tmp_path)


async def test_an_undecodable_dead_letter_is_kept_by_a_replay_and_discarded_with_a_reason(
    centres: TutoringCentres, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    seed(centres)
    store = read_store(tmp_path)
    js = nc.jetstream()
    async with relaying(centres, nc, tmp_path):
        await eventually(lambda: _stream_holds(js, centres.position))
        await js.publish(
            "tp.evt.main-campus.session.bogus.SessionStarted",
            b'{"not": "an event"}',
            headers={"Nats-Msg-Id": "bogus-1", "Tp-Notification-Id": "999999"},
        )
        async with projecting_as_service(store, nats_server, Settings(poison_after=2)):
            await eventually(lambda: _dead_letters(js, 1), timeout=30)
            await eventually(lambda: _reached(store, centres.position))
    [letter] = await dlq(js)

    kept = await cli(nats_server, tmp_path / "read.sqlite", "replay", str(letter.seq))
    assert kept.returncode == 1 and "kept, the event cannot be decoded" in kept.stdout
    no_reason = await cli(nats_server, tmp_path / "read.sqlite", "discard", str(letter.seq))
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    discarded = await cli(
        nats_server,
        tmp_path / "read.sqlite",
        "discard",
        str(letter.seq),
        "--reason",
        "published by hand while testing",
    )
    assert discarded.returncode == 0, discarded.stderr
    assert "dead_letters.discarded" in discarded.stderr and "published by hand" in discarded.stderr
    assert await count_dead_letters(js) == 0
    missing = await cli(nats_server, tmp_path / "read.sqlite", "show", str(letter.seq))
    assert missing.returncode == 1 and f"no message {letter.seq}" in missing.stderr
    assert store.dump(store.generation()) == reference(centres, tmp_path)


async def _reached(store: ReadStore, position: int) -> bool:
    return store.watermark() >= position


async def _stream_holds(js: JetStreamContext, count: int) -> bool:
    try:
        return (await js.stream_info("TP_EVENTS")).state.messages >= count
    except Exception:  # not created yet
        return False


async def _dead_letters(js: JetStreamContext, count: int) -> bool:
    try:
        return await count_dead_letters(js) >= count
    except Exception:  # not created yet
        return False
