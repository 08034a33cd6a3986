"""Personal data through the command API: a student's name, e-mail, a note and a help message
are stored sealed (no plain text in the SQLite file nor in any PostgreSQL row, receipts
included), while what the API hands out (a printed worksheet) shows them plain; after a
CENTER_ADMIN erases the student, the same answer shows "[erased]", the stored texts no longer
open, and nothing new about the student is recorded (409). Erasure is the centre admin's: a
tutor is refused (403), another centre's person is not found (404), erasing again answers the
first erasure (200)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pypdfium2  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from shared import events
from shared.events import HelpRequestRaised, PersonDataErased, PersonRegistered, TutorNoteWritten
from shared.privacy import is_sealed
from shared.tenancy import Actor, Role
from shared.tenancy.identity import person_id
from tests.api.helpers import is_problem, live_session
from tests.api.test_paper import print_sheets
from tests.api.test_work import ESSAY, publish
from tests.builders import Centre

NAME = "Zelda Quartermaine"
EMAIL = "zelda.quartermaine@alpha.example"
NOTE = "Zelda finds long division hard after her family moved house"
MESSAGE = "Zelda is stuck on question four"
PLAIN = (NAME, EMAIL.split("@")[0], NOTE, MESSAGE)


def register_zelda(client: TestClient[Litestar], centre: Centre) -> Actor:
    response = client.post(
        "/api/v1/people",
        json={"name": NAME, "email": EMAIL, "role": "STUDENT"},
        headers=centre.auth("admin"),
    )
    assert response.status_code == 201, response.text
    zelda = Actor(
        user_id=person_id(centre.centre_id, EMAIL), role=Role.STUDENT, centre_id=centre.centre_id
    )
    assert response.json()["personId"] == str(zelda.user_id)
    centre.people["zelda"] = zelda
    return zelda


def connect(centres: TutoringCentres) -> psycopg.Connection[Any]:
    settings = centres.store_settings
    return psycopg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        dbname=settings.postgres_dbname,
        user=settings.postgres_user,
        password=settings.postgres_password or None,
        autocommit=True,
    )


def execute(centres: TutoringCentres, statement: str) -> None:
    """One statement on the event store's database, from outside the services."""
    if centres.store_settings.store == "sqlite":
        with closing(sqlite3.connect(centres.store_settings.sqlite_path)) as connection:
            connection.execute(statement)
    else:
        with connect(centres) as connection:
            connection.execute(statement.encode())


def stored_texts(centres: TutoringCentres) -> bytes:
    """Every byte the event store keeps: the SQLite files, or every row of every table of the
    PostgreSQL database (but the key store's, which holds no text but its tombstones)."""
    settings = centres.store_settings
    if settings.store == "sqlite":
        path = Path(settings.sqlite_path)
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    kept = bytearray()
    with connect(centres) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        assert "tutorpulse_person_keys" in tables
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    kept += value if isinstance(value, bytes) else str(value).encode()
    return bytes(kept)


def text_on_sheets(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    return "\n".join(page.get_textpage().get_text_range() for page in document)


def stored(centres: TutoringCentres, kind: type[events.Event]) -> list[Any]:
    return [
        event
        for n in centres.recorder.select_notifications(1, 100_000)
        if isinstance(event := events.decode(n.state), kind)
    ]


def test_personal_texts_are_stored_sealed_shown_plain_and_erased(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    zelda = register_zelda(client, alpha)
    note = client.post(
        f"/api/v1/students/{zelda.user_id}/notes",
        json={"content": NOTE},
        headers=alpha.auth("tutor") | {"Idempotency-Key": "note-1"},
    )
    assert note.status_code == 201, note.text
    session = live_session(client, alpha, "zelda")
    raised = client.post(
        f"/api/v1/sessions/{session}/help-requests",
        json={"message": MESSAGE},
        headers=alpha.auth("zelda"),
    )
    assert raised.status_code == 201, raised.text

    # Stored: sealed, each with the student's own key; no plain text in any copy.
    kept = stored_texts(centres)
    for plain in PLAIN:
        assert plain.encode() not in kept, plain
    (registered,) = [
        e for e in stored(centres, PersonRegistered) if e.aggregate_id == zelda.user_id
    ]
    (written,) = stored(centres, TutorNoteWritten)
    (help_request,) = stored(centres, HelpRequestRaised)
    texts = [registered.name, registered.email, written.content, help_request.message]
    assert all(is_sealed(text) for text in texts)
    privacy = centres.privacy
    assert privacy is not None
    assert [privacy.revealer.text(t, "alpha") for t in texts] == [NAME, EMAIL, NOTE, MESSAGE]
    assert privacy.revealer.text(written.content, "beta") == "[unreadable]"

    # Shown: a worksheet printed for her work names her.
    exercise = publish(client, alpha, ESSAY)
    assigned = client.post(
        f"/api/v1/sessions/{session}/work",
        json={"exerciseId": exercise},
        headers=alpha.auth("tutor"),
    )
    assert assigned.status_code == 201, assigned.text
    assert NAME in text_on_sheets(print_sheets(client, alpha, session))

    # Erased by the centre's admin: the key first, then the audit event.
    erasure = client.post(
        f"/api/v1/people/{zelda.user_id}/erasure",
        json={"reason": "right-to-erasure request of 3 March, by e-mail"},
        headers=alpha.auth("admin"),
    )
    assert erasure.status_code == 201, erasure.text
    answer = erasure.json()
    assert answer["personId"] == str(zelda.user_id)
    assert answer["keyId"] == privacy.keys.fetch("alpha", zelda.user_id).key_id  # type: ignore[union-attr]
    erased_at = datetime.fromisoformat(answer["erasedAt"])
    everywhere_by = datetime.fromisoformat(answer["everywhereBy"])
    assert everywhere_by - erased_at == timedelta(seconds=privacy.key_cache_seconds)
    (audit,) = stored(centres, PersonDataErased)
    assert (audit.aggregate_id, audit.key_id, audit.occurred_at) == (
        zelda.user_id,
        answer["keyId"],
        erased_at,
    )
    assert audit.reason == "right-to-erasure request of 3 March, by e-mail"

    again = client.post(
        f"/api/v1/people/{zelda.user_id}/erasure",
        json={"reason": "asked twice"},
        headers=alpha.auth("admin"),
    )
    assert again.status_code == 200, again.text
    first = {k: v for k, v in answer.items() if k != "position"}
    assert {k: v for k, v in again.json().items() if k != "position"} == first
    assert len(stored(centres, PersonDataErased)) == 1

    # From then on her texts read [erased] wherever they are shown, and are still not stored.
    assert [privacy.revealer.text(t, "alpha") for t in texts] == ["[erased]"] * 4
    sheets = text_on_sheets(print_sheets(client, alpha, session))
    assert "[erased]" in sheets and NAME not in sheets
    kept = stored_texts(centres)
    for plain in PLAIN:
        assert plain.encode() not in kept, plain

    # Her own token stops working at once in the process that erased her.
    gone = is_problem(client.post("/api/v1/people", json={}, headers=alpha.auth("zelda")), 401)
    assert "erased" in gone["detail"]

    # Nothing new about her is recorded; what records no text about her still works.
    refused = is_problem(
        client.post(
            f"/api/v1/students/{zelda.user_id}/notes",
            json={"content": "another note"},
            headers=alpha.auth("tutor"),
        ),
        409,
    )
    assert "erased" in refused["detail"]

    def mark(**record: str) -> Any:
        return client.post(
            "/api/academic/attendance/bulk",
            json={"sessionId": session, "records": [{"studentId": str(zelda.user_id), **record}]},
            headers=alpha.auth("tutor"),
        )

    is_problem(mark(status="PRESENT", notes="left early with her aunt"), 409)
    marked = mark(status="PRESENT")
    assert marked.status_code == 200, marked.text


def test_only_a_centre_admin_erases_and_only_people_of_their_centre(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre, beta: Centre
) -> None:
    zelda = register_zelda(client, alpha)
    reason = {"reason": "a parent's request"}
    path = f"/api/v1/people/{zelda.user_id}/erasure"
    is_problem(client.post(path, json=reason, headers=alpha.auth("tutor")), 403)
    is_problem(client.post(path, json=reason, headers=alpha.auth("supervisor")), 403)
    is_problem(client.post(path, json=reason, headers=beta.auth("admin")), 404)
    is_problem(
        client.post(f"/api/v1/people/{uuid4()}/erasure", json=reason, headers=alpha.auth("admin")),
        404,
    )
    is_problem(client.post(path, json={"reason": ""}, headers=alpha.auth("admin")), 422)
    is_problem(client.post(path, json={"reason": "x" * 501}, headers=alpha.auth("admin")), 422)
    privacy = centres.privacy
    assert privacy is not None
    assert privacy.keys.fetch("alpha", zelda.user_id) is not None
    assert not privacy.revealer.erased("alpha", zelda.user_id)
    assert stored(centres, PersonDataErased) == []

    erased = client.post(path, json=reason, headers=alpha.auth("admin"))
    assert erased.status_code == 201, erased.text
    assert privacy.revealer.erased("alpha", zelda.user_id)
    assert not privacy.revealer.erased("alpha", alpha["ann"].user_id)
    # Registering her e-mail again would record her name anew: refused.
    is_problem(
        client.post(
            "/api/v1/people",
            json={"name": NAME, "email": EMAIL, "role": "STUDENT"},
            headers=alpha.auth("admin"),
        ),
        409,
    )
    assert UUID(erased.json()["personId"]) == zelda.user_id


def test_ready_fails_while_the_key_table_cannot_be_read(
    client: TestClient[Litestar], centres: TutoringCentres
) -> None:
    assert client.get("/ready").status_code == 200
    execute(centres, "ALTER TABLE tutorpulse_person_keys RENAME TO tutorpulse_person_keys_away")
    try:
        assert client.get("/ready").status_code == 503
    finally:
        execute(centres, "ALTER TABLE tutorpulse_person_keys_away RENAME TO tutorpulse_person_keys")
    assert client.get("/ready").status_code == 200
