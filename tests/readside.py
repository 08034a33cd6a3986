"""Shared set-up for read-side tests: a day at the demo centre as real events."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from services.command.application import TutoringCentres
from services.command.seed import seed
from shared import events
from shared.eventstore import EventStoreSettings
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load


@lru_cache(maxsize=1)
def demo_events() -> tuple[tuple[events.Event, int], ...]:
    """The demo centre's history (seeded through the commands), as (event, notification id)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        centres = TutoringCentres(
            load(
                EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(Path(folder) / "events.sqlite")}
            )
        )
        try:
            seed(centres)
            notifications = centres.recorder.select_notifications(1, 1_000_000)
        finally:
            centres.close()
    return tuple((events.decode(n.state), n.id) for n in notifications)


def read_store(folder: Path, name: str = "read.sqlite") -> ReadStore:
    return open_read_store(
        load(
            ReadStoreSettings,
            {"TUTORPULSE_READ_STORE": "sqlite", "TUTORPULSE_READ_SQLITE_PATH": str(folder / name)},
        )
    )
