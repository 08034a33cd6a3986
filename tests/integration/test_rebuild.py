"""A rebuild writes exactly what the live projection writes, on PostgreSQL as on SQLite, however
few of its documents it keeps between transactions; one that fails leaves the read models that
queries use in place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.command.application import TutoringCentres
from services.projections.rebuild import rebuild
from shared import events
from shared.eventstore import EventStoreSettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.readmodels.store.postgres import PostgresTransaction
from shared.readmodels.store.transaction import DocRow
from shared.settings import load
from tests.bench.year import seed_year
from tests.readside import read_store
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 14, 16, 45, tzinfo=UTC)


@pytest.fixture
def centres(tmp_path: Path) -> TutoringCentres:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    seed_year(centres, events=3_000, tutors=4, students=40, seed=3, now=NOW)
    return centres


def live(centres: TutoringCentres, store: ReadStore) -> dict[str, list[tuple[Any, ...]]]:
    """The read models as the live projection leaves them: small batches, each read back."""
    notifications = centres.recorder.select_notifications(1, 1_000_000)
    items = [(events.decode(n.state), n.id) for n in notifications]
    for start in range(0, len(items), 50):
        apply_all(store, items[start : start + 50])
    return store.dump(store.generation())


def postgres_store(pg: PostgresServer) -> ReadStore:
    return open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )


@pytest.mark.parametrize("keep_documents", [20_000, 7])
def test_a_rebuild_on_postgres_equals_the_live_read_models(
    centres: TutoringCentres, pg: PostgresServer, tmp_path: Path, keep_documents: int
) -> None:
    expected = live(centres, read_store(tmp_path, "live.sqlite"))
    store = postgres_store(pg)
    try:
        result = rebuild(centres, store, batch=300, settle_timeout=0, keep_documents=keep_documents)
        assert result.events == centres.position
        assert store.generation() == result.generation
        assert store.dump(result.generation) == expected
    finally:
        store.close()
        centres.close()


def test_a_rebuild_on_sqlite_keeping_few_documents_equals_the_live_read_models(
    centres: TutoringCentres, tmp_path: Path
) -> None:
    expected = live(centres, read_store(tmp_path, "live.sqlite"))
    store = read_store(tmp_path)
    try:
        result = rebuild(centres, store, batch=250, settle_timeout=0, keep_documents=3)
        assert store.dump(result.generation) == expected
    finally:
        store.close()
        centres.close()


def test_a_rebuild_that_cannot_write_leaves_the_current_read_models_in_place(
    centres: TutoringCentres, pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store(pg)
    try:
        expected = live(centres, store)
        current = store.generation()
        written: list[int] = []
        put_rows = PostgresTransaction.put_rows

        def fail_on_the_third(self: PostgresTransaction, rows: list[DocRow]) -> None:
            written.append(len(rows))
            if len(written) == 3:
                raise RuntimeError("disk full")
            put_rows(self, rows)

        monkeypatch.setattr(PostgresTransaction, "put_rows", fail_on_the_third)
        with pytest.raises(RuntimeError, match="disk full"):
            rebuild(centres, store, batch=300, settle_timeout=0)
        assert len(written) >= 3
        assert store.generation() == current
        assert store.dump(current) == expected
        with pytest.raises(Exception, match="does not exist"):  # its tables were dropped
            store.dump(current + 1)
    finally:
        store.close()
        centres.close()
