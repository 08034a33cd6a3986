"""The PostgreSQL read store serialises writers of one document, even one that does not exist
yet."""

from __future__ import annotations

import pathlib
import threading
import time

import pytest

from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration


def test_a_second_writer_of_the_same_documents_waits_for_the_first(pg: PostgresServer) -> None:
    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_STORE": "postgres", **pg.env()})
    )
    try:
        second_done = threading.Event()
        independent_done = threading.Event()

        def second_writer() -> None:
            with store.transaction() as tx:
                tx.get_many(
                    "session", ["b", "a"]
                )  # same keys, other order: must wait, not deadlock
            second_done.set()

        def independent_writer() -> None:
            with store.transaction() as tx:
                tx.get_many("session", ["c"])
            independent_done.set()

        with store.transaction() as first:
            first.get_many("session", ["a", "b"])
            others = [
                threading.Thread(target=second_writer),
                threading.Thread(target=independent_writer),
            ]
            for thread in others:
                thread.start()
            assert independent_done.wait(5), "a writer of other documents must not wait"
            time.sleep(0.3)
            assert not second_done.is_set(), (
                "the second writer went ahead while the first held the keys"
            )
        assert second_done.wait(5)
        for thread in others:
            thread.join(5)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_watermark_only_moves_forward(
    kind: str, pg: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """Replicas record the ack floor they read, in any order: an older one never wins."""
    where = (
        {"TUTORPULSE_READ_STORE": "postgres", **pg.fresh_database("watermark").env()}
        if kind == "postgres"
        else {"TUTORPULSE_READ_STORE": "sqlite", "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "r")}
    )
    store = open_read_store(load(ReadStoreSettings, where))
    try:
        store.ensure_ready()
        assert store.watermark() == 0
        store.advance_watermark(10)
        store.advance_watermark(4)
        assert store.watermark() == 10
        store.advance_watermark(12)
        assert store.watermark() == 12
    finally:
        store.close()
