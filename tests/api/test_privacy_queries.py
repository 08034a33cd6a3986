"""The query API opens sealed texts at the edge, stops an erased person's tokens, and hands
over everything kept about a person (subject access), on a real event store and read store.

The history is written as the command service writes it: personal texts sealed with the key
of the person they are about, the read models copying the sealed texts as they are."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.query.app import create_app
from services.query.settings import QuerySettings
from shared import events
from shared.events import CentreRegistered, PersonRegistered, TutorNoteWritten
from shared.events.notes import NoteVisibility
from shared.eventstore import EventStoreSettings, StoredLog
from shared.eventstore.store import EventStore
from shared.privacy import KeyStore, LocalKms, PrivacySettings, seal
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.api.conformance import checked
from tests.readside import demo_events, read_store

MAIN = "main-campus"
NORTH = "north-campus"
NAME = "Jane O'Doe"
EMAIL = "jane@example.org"
NOTE = "Jane mixes up numerators and denominators"


@dataclass
class World:
    client: TestClient[Litestar]
    keys: KeyStore
    log: StoredLog
    people: dict[str, UUID]

    def auth(self, handle: str, centre: str = MAIN) -> dict[str, str]:
        role = {
            "admin": Role.CENTER_ADMIN,
            "parent": Role.PARENT,
            "other_parent": Role.PARENT,
            "jane": Role.STUDENT,
            "tutor": Role.TEACHER,
            "north_admin": Role.CENTER_ADMIN,
        }[handle]
        actor = Actor(user_id=self.people[handle], role=role, centre_id=centre)
        return {"Authorization": f"Bearer {mint(actor)}"}

    def erase(self, handle: str, centre: str = MAIN) -> None:
        self.keys.destroy(
            centre, self.people[handle], erased_by=self.people["admin"], reason="asked"
        )


def history(keys: KeyStore, people: dict[str, UUID]) -> list[events.Event]:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    made: list[events.Event] = []

    def sealed(text: str, person: UUID, centre: str = MAIN) -> str:
        return seal(keys.get_or_create(centre, person), text, centre_id=centre, person_id=person)

    def envelope(centre: str, aggregate: UUID, by: UUID, role: Role) -> dict[str, Any]:
        return {
            "centre_id": centre,
            "aggregate_id": aggregate,
            "aggregate_version": 1,
            "occurred_at": now,
            "actor_id": by,
            "actor_role": role,
        }

    for centre in (MAIN, NORTH):
        made.append(
            CentreRegistered(
                **envelope(centre, uuid4(), UUID(int=0), Role.SUPER_ADMIN),
                name=centre,
                time_zone="Australia/Sydney",
                help_sla_minutes={"NORMAL": 10},
            )
        )
    admin = people["admin"]

    def person(handle: str, role: Role, centre: str = MAIN, **more: Any) -> None:
        made.append(
            PersonRegistered(
                **envelope(centre, people[handle], admin, Role.CENTER_ADMIN),
                name=sealed(
                    f"{handle.title()} {'Doe' if role is Role.STUDENT else 'Staff'}",
                    people[handle],
                    centre,
                )
                if handle != "jane"
                else sealed(NAME, people[handle], centre),
                email=sealed(
                    f"{handle}@example.org" if handle != "jane" else EMAIL, people[handle], centre
                ),
                role=role,
                **more,
            )
        )

    person("admin", Role.CENTER_ADMIN)
    person("parent", Role.PARENT)
    person("other_parent", Role.PARENT)
    person("tutor", Role.TEACHER)
    person("jane", Role.STUDENT, guardian_id=people["parent"])
    person("north_admin", Role.CENTER_ADMIN, NORTH)
    made.append(
        TutorNoteWritten(
            **envelope(MAIN, uuid4(), people["tutor"], Role.TEACHER),
            student_id=people["jane"],
            visibility=NoteVisibility.EXTERNAL,
            content=sealed(NOTE, people["jane"]),
        )
    )
    # A north student whose name is a sealed text of the main campus (copied where it does
    # not belong): north reads it as unreadable, never as main's text.
    made.append(
        PersonRegistered(
            **envelope(NORTH, people["north_student"], people["north_admin"], Role.CENTER_ADMIN),
            name=sealed("Main's secret", people["jane"]),
            email=sealed("north@example.org", people["north_student"], NORTH),
            role=Role.STUDENT,
        )
    )
    return made


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EventStoreSettings, ReadStore]]:
    if request.param == "sqlite":
        settings = EventStoreSettings(sqlite_path=tmp_path / "events.sqlite")
        read = read_store(tmp_path)
    else:
        env = request.getfixturevalue("pg").env()
        settings = load(EventStoreSettings, env)
        read = open_read_store(
            load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **env})
        )
    yield settings, read
    read.close()


@pytest.fixture
def world(stores: tuple[EventStoreSettings, ReadStore]) -> Iterator[World]:
    settings, read = stores
    # Every key read from the table: the tests see the store as it is at each request.
    keys = KeyStore(settings, PrivacySettings(key_cache_size=0), LocalKms({"m1": b"1" * 32}))
    people = {
        handle: uuid4()
        for handle in (
            "admin",
            "parent",
            "other_parent",
            "tutor",
            "jane",
            "north_admin",
            "north_student",
        )
    }
    made = history(keys, people)
    store = EventStore(settings)
    try:
        ids = store.recorder.insert_events([store.mapper.to_stored_event(e) for e in made])
    finally:
        store.close()
    assert ids is not None
    apply_all(read, list(zip(made, ids, strict=True)))
    read.advance_watermark(ids[-1])
    log = StoredLog(settings)
    query_settings = replace(load(QuerySettings), privacy=PrivacySettings(key_cache_seconds=0))
    app = create_app(
        read, head=log.head, own_resources=False, settings=query_settings, keys=keys, log=log
    )
    try:
        with TestClient(app) as client:
            yield World(checked(client), keys, log, people)
    finally:
        log.close()
        keys.close()


def test_sealed_texts_come_out_plain_for_their_centre(world: World) -> None:
    answer = world.client.get(
        f"/api/v1/students/{world.people['jane']}/overview", headers=world.auth("admin")
    )
    assert answer.status_code == 200, answer.text
    assert "pd1." not in answer.text
    assert NAME in answer.text and NOTE in answer.text
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert json.loads(answer.content)  # still JSON, the apostrophe and all


def test_another_centre_never_reads_a_main_campus_text(world: World) -> None:
    answer = world.client.get(
        f"/api/v1/students/{world.people['north_student']}/overview",
        headers=world.auth("north_admin", NORTH),
    )
    assert answer.status_code == 200, answer.text
    assert "Main's secret" not in answer.text
    assert "[unreadable]" in answer.text
    assert "north@example.org" not in answer.text  # an overview shows no e-mail address
    assert "pd1." not in answer.text


def test_an_erased_person_reads_erased_everywhere_and_their_tokens_stop(world: World) -> None:
    path = f"/api/v1/students/{world.people['jane']}/overview"
    assert world.client.get(path, headers=world.auth("jane")).status_code == 200
    world.erase("jane")
    answer = world.client.get(path, headers=world.auth("admin"))
    assert answer.status_code == 200
    assert NAME not in answer.text and NOTE not in answer.text
    assert "[erased]" in answer.text
    refused = world.client.get(path, headers=world.auth("jane"))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "this person's data was erased" in refused.json()["detail"]
    # Everyone else's tokens still work.
    assert world.client.get(path, headers=world.auth("parent")).status_code == 200


def test_ready_reports_the_key_store(world: World) -> None:
    answer = world.client.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["details"]["keyStore"] == "ok"


def test_ready_is_a_fast_503_when_the_key_store_cannot_be_read(world: World) -> None:
    world.keys.close()
    answer = world.client.get("/ready")
    assert answer.status_code == 503
    assert "key store" in answer.json()["reason"]
    assert "keyStore" in answer.json()["details"]


def test_a_key_store_that_cannot_be_read_is_a_503_not_a_401(world: World) -> None:
    world.keys.close()
    answer = world.client.get(
        f"/api/v1/students/{world.people['jane']}/overview", headers=world.auth("admin")
    )
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert "pd1." not in answer.text


def stored_events_naming(world: World, person: UUID, centre: str) -> list[events.Event]:
    head = world.log.head()
    return [
        events.decode(n.state)
        for n in world.log.page(0, 10_000, head)
        if str(person).encode() in n.state and events.decode_header(n.state).centre_id == centre
    ]


def export(world: World, handle: str, who: str) -> Any:
    answer = world.client.get(
        f"/api/v1/people/{world.people[handle]}/export", headers=world.auth(who)
    )
    assert answer.status_code == 200, answer.text
    assert "attachment" in answer.headers["content-disposition"]
    assert int(answer.headers["X-Tutorpulse-Watermark"]) >= 0  # the read models it reflects
    return answer.json()


def test_the_export_holds_every_event_and_document_about_the_person(world: World) -> None:
    document = export(world, "jane", "admin")
    manifest = document["manifest"]
    stored = stored_events_naming(world, world.people["jane"], MAIN)
    assert [e["event"]["type"] for e in document["events"]] == [e.type_name for e in stored]
    assert manifest["events"] == len(stored) == 2
    assert manifest["eventsByType"] == {"PersonRegistered": 1, "TutorNoteWritten": 1}
    assert manifest["documentsByKind"] == dict(Counter(d["kind"] for d in document["documents"]))
    assert manifest["documents"] == len(document["documents"])
    kinds = {d["kind"] for d in document["documents"]}
    assert {"person", "student", "contact"} <= kinds
    assert manifest["personId"] == str(world.people["jane"])
    assert manifest["centreId"] == MAIN
    assert manifest["position"] == world.log.head()
    assert manifest["erased"] is False
    text = json.dumps(document)
    assert NAME in text and EMAIL in text and NOTE in text
    assert "pd1." not in text
    positions = [e["position"] for e in document["events"]]
    assert positions == sorted(positions)


def test_the_guardian_exports_their_child_and_nobody_else_may(world: World) -> None:
    document = export(world, "jane", "parent")
    assert NAME in json.dumps(document)
    assert any("documents that list" in line for line in document["manifest"]["notIncluded"])
    jane = world.people["jane"]
    for who in ("other_parent", "tutor", "jane"):
        refused = world.client.get(f"/api/v1/people/{jane}/export", headers=world.auth(who))
        assert refused.status_code == 403, (who, refused.text)
    refused = world.client.get(
        f"/api/v1/people/{world.people['north_student']}/export", headers=world.auth("admin")
    )
    assert refused.status_code == 404
    refused = world.client.get(
        f"/api/v1/people/{world.people['tutor']}/export", headers=world.auth("parent")
    )
    assert refused.status_code == 403


def test_after_erasure_the_export_still_answers_with_the_texts_erased(world: World) -> None:
    world.erase("jane")
    document = export(world, "jane", "admin")
    text = json.dumps(document)
    assert NAME not in text and EMAIL not in text and NOTE not in text
    assert "[erased]" in text
    assert document["manifest"]["erased"] is True
    assert document["manifest"]["events"] == 2


def test_other_people_texts_are_withheld_from_a_person_export(world: World) -> None:
    document = export(world, "parent", "admin")
    types = [e["event"]["type"] for e in document["events"]]
    assert types == ["PersonRegistered", "PersonRegistered"]  # their own, and their child's
    text = json.dumps(document)
    assert "Parent Staff" in text
    assert NAME not in text and EMAIL not in text
    assert "[withheld]" in text


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """The demo centre's day (sessions, attendance, help, work) in an event store and the
    read models, behind a query API with a key store."""
    settings = EventStoreSettings(sqlite_path=tmp_path / "events.sqlite")
    history = [event for event, _ in demo_events()]
    store = EventStore(settings)
    try:
        ids = store.recorder.insert_events([store.mapper.to_stored_event(e) for e in history])
    finally:
        store.close()
    assert ids is not None
    read = read_store(tmp_path)
    apply_all(read, list(zip(history, ids, strict=True)))
    read.advance_watermark(ids[-1])
    log = StoredLog(settings)
    keys = KeyStore(settings, PrivacySettings(), LocalKms({"m1": b"1" * 32}))
    app = create_app(read, head=log.head, own_resources=False, keys=keys, log=log)
    try:
        with TestClient(app) as client:
            yield checked(client)
    finally:
        log.close()
        keys.close()
        read.close()


def demo_auth(handle: str) -> dict[str, str]:
    person = demo_person(handle)
    token = mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))
    return {"Authorization": f"Bearer {token}"}


def test_an_administrator_export_lists_the_documents_that_list_the_student(
    demo: TestClient[Litestar],
) -> None:
    jane = str(demo_person("jane").id)
    answer = demo.get(f"/api/v1/people/{jane}/export", headers=demo_auth("admin"))
    assert answer.status_code == 200, answer.text
    document = answer.json()
    naming = [
        event
        for event, _ in demo_events()
        if jane in events.encode(event).decode() and event.centre_id == DEMO_CENTRE
    ]
    assert [e["event"]["type"] for e in document["events"]] == [e.type_name for e in naming]
    assert document["manifest"]["eventsByType"] == dict(Counter(e.type_name for e in naming))
    kinds = Counter(d["kind"] for d in document["documents"])
    assert document["manifest"]["documentsByKind"] == dict(kinds)
    assert {"person", "student", "session"} <= set(kinds)
    assert all(jane in json.dumps(d) for d in document["documents"])
    assert "Jane Johnson" in answer.text

    # Her guardian gets what is hers alone: no session, class or tutor's day listing others.
    answer = demo.get(f"/api/v1/people/{jane}/export", headers=demo_auth("robert"))
    assert answer.status_code == 200, answer.text
    parents = answer.json()
    assert parents["events"] == document["events"]
    own = {(d["kind"], d["key"]) for d in parents["documents"]}
    assert own < {(d["kind"], d["key"]) for d in document["documents"]}
    assert not {kind for kind, _ in own} & {"session", "class", "help_requests", "help_index"}
    for entry in parents["documents"]:
        assert entry["key"].startswith(jane) or jane in (
            entry["document"].get("studentId"),
            entry["document"].get("personId"),
        )
    # Another parent's child, and a student of the centre asking about a classmate: 403.
    alex = demo_person("alex").id
    assert demo.get(f"/api/v1/people/{alex}/export", headers=demo_auth("robert")).status_code == 403
    assert demo.get(f"/api/v1/people/{alex}/export", headers=demo_auth("jane")).status_code == 403
