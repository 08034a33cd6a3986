from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from services.command.application import TutoringCentres
from tests.support.servers import NatsServer, PostgresServer, running_nats

pytestmark = pytest.mark.integration


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
