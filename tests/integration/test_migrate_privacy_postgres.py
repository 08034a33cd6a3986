"""``python -m services.migrate privacy`` on PostgreSQL: events stored in plain text (written
as before sealing: a command service without a key store) are sealed in their rows, at the
same notification ids; no personal text is left in the events table; the snapshots are gone;
running it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from services.command.application import TutoringCentres
from services.command.seed import seed
from services.migrate.migration import seal_the_past
from services.migrate.privacy import reseal
from services.migrate.settings import MigrateSettings
from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.privacy import FieldCipher, Revealer, is_sealed, new_master_key, open_key_store
from shared.privacy.fields import seal_event
from shared.settings import load
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration


class Collect:
    def __init__(self) -> None:
        self.texts: set[str] = set()

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID) -> str:
        self.texts.add(text)
        return text


def rows(pg: PostgresServer) -> list[tuple[int, str, int, str, bytes]]:
    with psycopg.connect(pg.dsn()) as connection:
        return [
            (n, str(o), v, t, bytes(s))
            for n, o, v, t, s in connection.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM tutorpulse_events ORDER BY notification_id"
            )
        ]


def test_plain_events_are_sealed_in_their_rows(pg: PostgresServer, tmp_path: Path) -> None:
    old = TutoringCentres(load(EventStoreSettings, pg.env()))  # no key store: plain text
    try:
        seed(old)
    finally:
        old.close()
    before = rows(pg)
    collect = Collect()
    for *_, topic, state in before:
        seal_event(events.decode(state, topic), collect)
    texts = {text for text in collect.texts if len(text) >= 8}
    assert "Jane Johnson" in texts and "Can we go over nested loops?" in texts

    settings = load(
        MigrateSettings,
        {
            **pg.env(),
            "TUTORPULSE_READ_STORE": "sqlite",
            "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
            "TUTORPULSE_PRIVACY_MASTER_KEYS": f"m1={new_master_key()}",
        },
    )
    seal_the_past(settings)

    after = rows(pg)
    assert [row[:4] for row in after] == [row[:4] for row in before]
    table = b"".join(state for *_, state in after)
    assert [text for text in texts if text.encode() in table] == []
    with psycopg.connect(pg.dsn()) as connection:
        counted = connection.execute("SELECT count(*) FROM tutorpulse_snapshots").fetchone()
    assert counted is not None and counted[0] == 0
    keys = open_key_store("test", settings.event_store, settings.privacy, dev_mode=False)
    store = EventStore(settings.event_store)
    try:
        revealer = Revealer(keys)
        people = [
            event
            for *_, topic, state in after
            if isinstance(event := events.decode(state, topic), events.PersonRegistered)
        ]
        assert all(is_sealed(p.name) and is_sealed(p.email) for p in people)
        assert "Jane Johnson" in {revealer.text(p.name, p.centre_id) for p in people}
        again = reseal(store, FieldCipher(keys))
    finally:
        store.close()
        keys.close()
    assert again.rewritten == 0 and rows(pg) == after
