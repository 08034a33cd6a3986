"""Both APIs, in process, on SQLite, with the demo centre in their stores, for schemathesis.

Each generated request is sent by one of the seven roles in turn (a valid token of a demo
person of that role; every eighth request keeps whatever credentials schemathesis made up), and
its path ids are, in turn, ids the demo centre really has or the ones schemathesis drew, so
that answers of every kind (found, not found, refused, invalid) are checked.

``TUTORPULSE_CONTRACT_EXAMPLES`` sets how many requests schemathesis generates per operation
(15 by default; ``make contract`` asks for many more).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from litestar import Litestar
from schemathesis.config import SchemathesisConfig

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.command.seed import seed
from services.query.app import create_app as query_app
from shared import events
from shared.eventstore import EventStoreSettings
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, DEMO_PEOPLE
from shared.tenancy.roles import PEOPLE_ROLES
from shared.tenancy.tokens import mint
from tests.readside import demo_events, read_store

EXAMPLES = int(os.environ.get("TUTORPULSE_CONTRACT_EXAMPLES", "15"))


def config() -> SchemathesisConfig:
    """Positive and negative data, the documented examples, boundary values and random ones;
    a fixed seed, so a run can be repeated."""
    return SchemathesisConfig.from_dict(
        {
            "seed": 20261203,
            "generation": {"mode": "all", "max-examples": EXAMPLES},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )


class Callers:
    """Each request in turn: a token of the next role, and the demo centre's ids for its path."""

    def __init__(self, ids: Mapping[str, list[str]]) -> None:
        self._ids = ids
        people = [role for role in Role if role in PEOPLE_ROLES]
        self._tokens = itertools.cycle([*(_token(role) for role in people), None])
        self._turn = itertools.count()

    def prepare(self, case: Any) -> None:
        token = next(self._tokens)
        if token is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        turn = next(self._turn)
        for name in list(case.path_parameters or {}):
            known = self._ids.get(name, [])
            if known and turn % (len(known) + 1):
                case.path_parameters[name] = known[turn % (len(known) + 1) - 1]


def _token(role: Role) -> str:
    person = next(p for p in DEMO_PEOPLE if p.role is role)
    return mint(Actor(user_id=person.id, role=role, centre_id=DEMO_CENTRE))


_ID_FIELD = re.compile(r"^(\w+)_id$")


def ids_of(history: list[events.Event]) -> dict[str, list[str]]:
    """The ids the demo centre's events name, by the path parameter that would carry them
    (``session_id``, ``request_id`` for a help request…), a few of each."""
    found: dict[str, set[str]] = {}
    for event in history:
        for name in event.__struct_fields__:
            value = getattr(event, name)
            if isinstance(value, UUID) and _ID_FIELD.match(name):
                key = "request_id" if name == "help_request_id" else name
                found.setdefault(key, set()).add(str(value))
    found["centre_id"] = {DEMO_CENTRE}
    return {name: sorted(values)[:6] for name, values in found.items()}


_FOLDER = Path(tempfile.mkdtemp(prefix="tutorpulse-contract-"))
_OPEN: list[Callable[[], None]] = []


@functools.cache
def demo_centres() -> TutoringCentres:
    """An event store holding the demo centre, for the whole run."""
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(_FOLDER / "events.sqlite")})
    )
    _OPEN.append(centres.close)
    seed(centres)
    return centres


@functools.cache
def demo_read_store() -> ReadStore:
    """Read models of the demo centre, for the whole run."""
    store = read_store(_FOLDER)
    _OPEN.append(store.close)
    apply_all(store, demo_events())
    store.advance_watermark(demo_events()[-1][1])
    return store


def command_schema() -> Any:
    """The command API's document (read when the test module is imported: schemathesis makes
    a test per operation from it)."""
    return schemathesis.openapi.from_asgi(
        "/schema/openapi.json", command_app(demo_centres(), own_resources=False), config=config()
    )


def _head() -> int:
    """The event store's head: the read models have every event of the demo centre."""
    return demo_events()[-1][1]


def query_schema() -> Any:
    return schemathesis.openapi.from_asgi(
        "/schema/openapi.json",
        query_app(demo_read_store(), head=_head, own_resources=False),
        config=config(),
    )


@pytest.fixture
def command_api() -> Litestar:
    """The app a test calls: built for the test, as a service is built when it starts (the
    token settings of a test do not outlive it)."""
    return command_app(demo_centres(), own_resources=False)


@pytest.fixture
def query_api() -> Litestar:
    return query_app(demo_read_store(), head=_head, own_resources=False)


@pytest.fixture(scope="session", autouse=True)
def _stores_closed() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop()()
    shutil.rmtree(_FOLDER, ignore_errors=True)


@pytest.fixture(scope="session")
def callers() -> Callers:
    return Callers(ids_of([event for event, _ in demo_events()]))
