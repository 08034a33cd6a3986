"""Names are stored sealed, yet answers that list people by name list them in the order their
readers read them: the query API's class roster and help-request report, and the live
gateway's roster frame, order by the opened name (case aside), not by the ciphertext."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterPerson
from services.command.commands.classes import AddClassMember, CreateClass
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.sessions import EnrolStudent, StartSession
from services.command.privacy import PersonalData
from services.live_gateway.hub import Hub, ResyncStale, Settings
from services.query.app import create_app
from shared import events
from shared.eventstore import EventStoreSettings
from shared.privacy import Revealer, is_sealed, open_key_store
from shared.privacy.settings import PrivacySettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.identity import person_id
from shared.tenancy.tokens import mint
from tests.api.conformance import checked
from tests.builders import Centre, plan, register_centre, session_id
from tests.readside import read_store
from tests.unit.test_live_hub import FakeNats

CENTRE = "alpha"
REGISTERED = ("Zoe", "Adam", "bea", "Mia")
"""In the order they are registered (and join the class); ``bea`` is written in lower case."""
ALPHABETICAL = ["Adam", "bea", "Mia", "Zoe"]


@dataclass
class World:
    centres: TutoringCentres
    privacy: PersonalData
    alpha: Centre
    store: ReadStore
    class_id: UUID
    students: dict[str, Actor]
    tutors: dict[str, Actor]

    def auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(actor)}"}


def register(centres: TutoringCentres, alpha: Centre, name: str, role: Role) -> Actor:
    email = f"{name.lower()}.{role.value.lower()}@{CENTRE}.example"
    centres.handle(alpha["admin"], RegisterPerson(name=name, email=email, role=role))
    return Actor(user_id=person_id(CENTRE, email), role=role, centre_id=CENTRE)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "ev.sqlite")})
    privacy = PersonalData(
        open_key_store("command", settings, load(PrivacySettings), dev_mode=False),
        load(PrivacySettings),
    )
    centres = TutoringCentres(settings, privacy=privacy)  # seals as the command service does
    try:
        alpha = register_centre(centres, CENTRE)
        students = {name: register(centres, alpha, name, Role.STUDENT) for name in REGISTERED}
        tutors = {name: register(centres, alpha, name, Role.TEACHER) for name in REGISTERED}
        created = centres.handle(
            alpha["admin"],
            CreateClass(
                name="Algebra", subject="MATHEMATICS", teacher_id=alpha["tutor"].user_id, capacity=8
            ),
        )
        class_id = UUID(str(created.body["classId"]))
        for student in students.values():
            centres.handle(
                alpha["admin"], AddClassMember(class_id=class_id, student_id=student.user_id)
            )
        for tutor in tutors.values():  # one help request in a live session of each tutor
            session = session_id(centres.handle(alpha["admin"], plan(tutor)).body)
            centres.handle(
                alpha["admin"], EnrolStudent(session_id=session, student_id=alpha["ann"].user_id)
            )
            centres.handle(tutor, StartSession(session_id=session))
            centres.handle(alpha["ann"], RaiseHelpRequest(session_id=session))
        stored = [
            (events.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 10**6)
        ]
        names = [e.name for e, _ in stored if isinstance(e, events.PersonRegistered)]
        assert names and all(is_sealed(name) for name in names)
        store = read_store(tmp_path)
        apply_all(store, stored)
        yield World(centres, privacy, alpha, store, class_id, students, tutors)
    finally:
        centres.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient[Litestar]]:
    app = create_app(world.store, own_resources=False, keys=world.privacy.keys)
    with TestClient(app) as client:
        yield checked(client)
    world.store.close()


def test_a_class_roster_lists_its_members_by_their_opened_names(
    world: World, client: TestClient[Litestar]
) -> None:
    roster = client.get(
        f"/api/v1/classes/{world.class_id}/roster", headers=world.auth(world.alpha["admin"])
    )
    assert roster.status_code == 200, roster.text
    assert [m["name"] for m in roster.json()["data"]["members"]] == ALPHABETICAL


def test_the_help_request_report_lists_tutors_by_their_opened_names(
    world: World, client: TestClient[Litestar]
) -> None:
    report = client.get("/api/v1/analytics/help-requests", headers=world.auth(world.alpha["admin"]))
    assert report.status_code == 200, report.text
    assert [t["tutorName"] for t in report.json()["data"]["tutors"]] == ALPHABETICAL


@pytest_asyncio.fixture
async def hub(world: World) -> AsyncIterator[Hub]:
    hub = Hub(
        world.store,
        Settings(queue=8, resync_seconds=3600, max_topics=4),
        Revealer(world.privacy.keys),
    )
    await hub.start(FakeNats())
    yield hub
    await hub.stop()


async def test_the_gateway_s_roster_frame_lists_members_by_their_opened_names(
    world: World, hub: Hub
) -> None:
    connection = hub.open(world.alpha["admin"])
    await hub.subscribe(connection, f"class:{world.class_id}")
    item = connection.outbox.get_nowait()
    assert not isinstance(item, ResyncStale)
    frame = await hub.outgoing(connection, item)
    data: dict[str, Any] = msgspec.json.decode(frame.text)["data"]
    assert [m["name"] for m in data["members"]] == ALPHABETICAL
