from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.messaging import connect
from shared.settings import load
from tests.support.servers import NatsServer, PostgresServer, running_nats

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_centres(pg: PostgresServer) -> Iterator[TutoringCentres]:
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    yield centres
    centres.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with running_nats(tmp_path / "nats") as server:
        yield server


@pytest_asyncio.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """The tests' own client (the harness user, allowed everything): it plays whatever the
    service under test talks to. Services get their own users: see ``nats_as``."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


NatsAs = Callable[[str], Awaitable[Client]]


@pytest_asyncio.fixture
async def nats_as(nats_server: NatsServer) -> AsyncIterator[NatsAs]:
    """``await nats_as("relay")``: a client logged in as that service's user, the way the
    service connects (``shared.messaging.connect``); closed after the test."""
    clients: list[Client] = []

    async def connect_as(user: str) -> Client:
        client = await connect(
            nats_server.address, name=f"test-{user}", credentials=nats_server.credentials_for(user)
        )
        clients.append(client)
        return client

    yield connect_as
    for client in clients:
        await client.close()
