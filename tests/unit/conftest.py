"""Fixtures of the unit tests of the projection service (``test_projection_service``,
``test_projection_trace``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from tests.readside import demo_events, read_store
from tests.support.projection_replica import Item, before, session_of


@pytest.fixture
def demo_history() -> list[Item]:
    """The demo centre's history, in stream order."""
    return list(demo_events())


@pytest.fixture
def session_events(demo_history: list[Item]) -> list[Item]:
    """The events of one session with several students, in order."""
    return session_of(demo_history)


@pytest.fixture
def store_before_enrolment(
    tmp_path: Path, demo_history: list[Item], session_events: list[Item]
) -> ReadStore:
    """A read store (in ``tmp_path``) with the demo history applied up to the session's first
    enrolment, ``session_events[1]``, which is not."""
    store = read_store(tmp_path)
    apply_all(store, before(demo_history, session_events[1]))
    return store
