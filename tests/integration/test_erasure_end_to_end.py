"""A student's erasure, all the way through (issue 14): the command service, relay,
projections and query API on SQLite stores and a real nats-server. A student with a name
found nowhere else is registered, enrolled and marked present, a tutor writes a note about
her and she asks for help; it all reaches JetStream and the read models; a CENTER_ADMIN erases
her through the command API. Then her name, e-mail address, the note and her message are in no
file of the stores (events with their keys, read models, WAL included, JetStream's too), no
message of any stream, no line of the SessionLog export and no query answer, which show
"[erased]" where they were; her attendance and the session's counts are as they were; and a
rebuild of the read models from the events equals the live ones."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.command.seed import seed
from services.projections.rebuild import rebuild
from services.projections.service import ProjectionService
from services.query.app import create_app as query_app
from services.relay.lease import FileLease
from services.relay.relay import Relay
from shared.blobs.filesystem import FilesystemBlobStore, UrlSigner
from shared.eventstore import EventStoreSettings, StoredLog
from shared.messaging import connect, ensure_streams
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFY_STREAM, PROJECTIONS, RELAY
from shared.privacy import ERASED, PrivacySettings, open_key_store
from shared.readmodels.documents import PERSON
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.integration.cluster import serve
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration

LIVE = "Intro to Programming - Live Q&A"
NAME = "Quillon Abernethy-Szabo"
EMAIL = "quillon.as@example.org"
NOTE = "Quillon's father asked us not to mention the hospital stay in class"
HELP = "Quillon needs the slides printed larger, his glasses broke"
SECRETS = (NAME, EMAIL, NOTE, HELP, "Quillon")
WAIT = 20.0
"""The longest any condition is waited for before the test fails."""
KEY_CACHE_SECONDS = 0.5
"""How long the query API's process may use a key after another process destroyed it."""


def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor)}"}


def demo(handle: str) -> Actor:
    person = demo_person(handle)
    return Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE)


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    async def wait() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(wait(), WAIT)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT} s: {what}") from None


@dataclass(frozen=True)
class Stack:
    folder: Path
    centres: TutoringCentres
    read: ReadStore
    command: httpx.AsyncClient
    query: httpx.AsyncClient

    async def caught_up(self) -> bool:
        return self.read.watermark() >= self.centres.position


@asynccontextmanager
async def stack(folder: Path, nats_server: NatsServer) -> AsyncIterator[Stack]:
    """Command service, relay, projections and query API on SQLite files in ``folder``."""
    env = {
        "TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite"),
        "TUTORPULSE_READ_STORE": "sqlite",
        "TUTORPULSE_READ_SQLITE_PATH": str(folder / "read.sqlite"),
    }
    events_settings = load(EventStoreSettings, env)
    centres = TutoringCentres(events_settings)
    read = open_read_store(load(ReadStoreSettings, env))
    privacy = replace(load(PrivacySettings), key_cache_seconds=KEY_CACHE_SECONDS)
    keys = open_key_store("query", events_settings, privacy, dev_mode=False)
    blobs = FilesystemBlobStore(folder / "blobs", UrlSigner(b"u" * 32))
    log = StoredLog(events_settings)
    clients = {
        user: await connect(
            nats_server.address, name=f"test-{user}", credentials=nats_server.credentials_for(user)
        )
        for user in (RELAY, PROJECTIONS)
    }
    js = clients[RELAY].jetstream()
    await ensure_streams(js)
    relay = Relay(centres, centres.tracking(), js, FileLease(folder / "events.sqlite.relay.lock"))
    projections = ProjectionService(read, clients[PROJECTIONS], blobs=blobs)
    workers = [asyncio.create_task(relay.run()), asyncio.create_task(projections.run())]
    servers = [
        await serve(command_app(centres, own_resources=False, blobs=blobs)),
        await serve(query_app(read, own_resources=False, blobs=blobs, keys=keys, log=log)),
    ]
    command_port, query_port = (port for _, _, port in servers)
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{command_port}") as command,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{query_port}") as query,
        ):
            yield Stack(folder, centres, read, command, query)
    finally:
        for server, task, _ in servers:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        relay.stop()
        projections.stop()
        await asyncio.wait_for(asyncio.gather(*workers), 10)
        for client in clients.values():
            await client.close()
        log.close()
        keys.close()
        read.close()
        centres.close()


async def posted(client: httpx.AsyncClient, path: str, actor: Actor, body: Any) -> Any:
    response = await client.post(path, json=body, headers=bearer(actor))
    assert response.status_code in (200, 201, 202), f"{path}: {response.text}"
    return response.json() if response.content else None


async def got(client: httpx.AsyncClient, path: str, actor: Actor) -> httpx.Response:
    response = await client.get(path, headers=bearer(actor))
    assert response.status_code == 200, f"{path}: {response.text}"
    return response


def checkpoint(path: Path) -> None:
    """Everything in the WAL copied into the file and the WAL emptied."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def files_holding(folder: Path, texts: tuple[str, ...]) -> list[str]:
    """The files under ``folder`` in whose bytes any of ``texts`` is (as UTF-8 or JSON)."""
    found = []
    needles = [t.encode() for t in texts] + [json.dumps(t).encode()[1:-1] for t in texts]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.relative_to(folder)}: {n!r}" for n in needles if n in data]
    return found


async def stream_messages(nats_url: str, stream: str) -> list[bytes]:
    """Every message ``stream`` holds, read one by one (the harness user may read any)."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        if not info.state.messages:
            return []
        messages = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                messages.append((await js.get_msg(stream, sequence)).data or b"")
            except NotFoundError:
                continue
        return messages
    finally:
        await client.close()


def students_of(control_center: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["studentId"]: s for s in control_center["data"]["students"]}


async def test_an_erased_student_is_gone_from_every_copy_and_the_log_keeps_its_shape(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    admin, john = demo("admin"), demo("john")
    async with stack(tmp_path / "stores", nats_server) as tp:
        live = str(seed(tp.centres)[LIVE])
        registered = await posted(
            tp.command,
            "/api/v1/people",
            admin,
            {"name": NAME, "email": EMAIL, "role": "STUDENT"},
        )
        student = registered["personId"]
        her = Actor(user_id=student, role=Role.STUDENT, centre_id=DEMO_CENTRE)
        await posted(
            tp.command,
            f"/api/v1/sessions/{live}/enrolments",
            john,
            {"studentId": student, "courseId": "python-101", "lessonId": "loops"},
        )
        await posted(
            tp.command,
            "/api/academic/attendance/bulk",
            john,
            {"sessionId": live, "records": [{"studentId": student, "status": "PRESENT"}]},
        )
        await posted(
            tp.command,
            f"/api/v1/students/{student}/notes",
            john,
            {"content": NOTE, "sessionId": live},
        )
        await posted(
            tp.command,
            f"/api/v1/sessions/{live}/help-requests",
            her,
            {"priority": "MEDIUM", "message": HELP},
        )
        await until(tp.caught_up, "the read models caught up with the events")

        centre_view = f"/api/v1/sessions/{live}/control-center"
        overview = f"/api/v1/students/{student}/overview"
        before = (await got(tp.query, centre_view, john)).json()
        assert students_of(before)[student]["name"] == NAME  # opened for the tutor
        assert HELP in json.dumps(before) and NOTE in (await got(tp.query, overview, admin)).text
        stored = tp.read.get(PERSON, student)
        assert stored is not None and stored.doc.name.startswith("pd1.")  # kept sealed
        assert files_holding(tp.folder, SECRETS) == []  # sealed at the source: never plain

        await posted(
            tp.command,
            f"/api/v1/people/{student}/erasure",
            admin,
            {"reason": "right-to-erasure request 2026-17"},
        )

        async def erased() -> bool:
            person = tp.read.get(PERSON, student)
            return person is not None and person.doc.erased is True and await tp.caught_up()

        await until(erased, "the person document reads erased")

        async def opened_as_erased() -> bool:
            # The query API's process reads the key's row again within its key cache's
            # seconds, and finds the tombstone.
            text = (await got(tp.query, centre_view, john)).text
            return not any(secret in text for secret in SECRETS)

        await until(opened_as_erased, "the Control Center shows her texts as erased")
        after = (await got(tp.query, centre_view, john)).json()
        assert students_of(after)[student]["name"] == ERASED
        assert ERASED in json.dumps(after)
        # Her attendance, the session's roster and counts, everyone else: as they were.
        assert students_of(after).keys() == students_of(before).keys()
        for sid, seat in students_of(before).items():
            assert students_of(after)[sid]["attendance"] == seat["attendance"]
            if sid != student:
                assert students_of(after)[sid]["name"] == seat["name"]
        answers = [
            (await got(tp.query, overview, admin)).text,
            (await got(tp.query, f"/api/v1/sessions/{live}/log", admin)).text,
            (await got(tp.query, "/api/academic/tutor/my-day", john)).text,
            (await got(tp.query, "/api/v1/notifications", john)).text,
            (await got(tp.query, f"/api/v1/people/{student}/export", admin)).text,
        ]
        export = (await got(tp.query, f"/api/v1/sessions/{live}/log.jsonl", admin)).text
        for answer in [*answers, *export.splitlines()]:
            assert not any(secret in answer for secret in SECRETS), answer[:300]
        assert ERASED in answers[0] and ERASED in answers[-1] and ERASED in export
        entries = [json.loads(line) for line in export.splitlines() if line.strip()]
        types = [entry["type"] for entry in entries]
        assert types.count("HelpRequestRaised") >= 1 and types.count("AttendanceMarked") >= 1

        live_models = tp.read.dump(tp.read.generation())
        rebuilt = rebuild(tp.centres, tp.read, keep_old=True)
        assert tp.read.dump(rebuilt.generation) == live_models

    nats_url = nats_server.url
    for stream in (EVENTS_STREAM, NOTIFY_STREAM, DLQ_STREAM):
        for message in await stream_messages(nats_url, stream):
            assert not any(secret.encode() in message for secret in SECRETS), stream
    assert len(await stream_messages(nats_url, EVENTS_STREAM)) > 100
    for store in ("events.sqlite", "read.sqlite"):
        checkpoint(tmp_path / "stores" / store)
    assert files_holding(tmp_path, SECRETS) == []
