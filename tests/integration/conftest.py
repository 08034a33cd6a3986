from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from services.command.application import TutoringCentres
from tests.support.servers import NatsServer, PostgresServer, running_nats, running_postgres

pytestmark = pytest.mark.integration
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg(postgres: PostgresServer) -> PostgresServer:
    """A fresh, empty database for one test."""
    return postgres.fresh_database(f"t{next(_databases)}")


@pytest.fixture
def pg_centres(pg: PostgresServer) -> Iterator[TutoringCentres]:
    centres = TutoringCentres(pg.env())
    yield centres
    centres.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with running_nats(tmp_path / "nats") as server:
        yield server


@pytest_asyncio.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()
