"""The whole chain in one test process: command, relay, projections, query and gateway, on a
real PostgreSQL and nats-server, each HTTP service on its own port of 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from litestar import Litestar
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.live_gateway.app import create_app as gateway_app
from services.live_gateway.hub import Settings
from services.projections.service import ProjectionService
from services.query.app import create_app as query_app
from services.relay.lease import PostgresLease
from services.relay.relay import Relay
from shared.blobs import BlobStore
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import postgres_conninfo, store_env
from shared.messaging import connect, ensure_streams
from shared.messaging.auth import GATEWAY, PROJECTIONS, RELAY
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from tests.support.servers import NatsServer, PostgresServer, free_port


async def serve(app: Litestar) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            ws_ping_interval=None,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port


@dataclass(frozen=True)
class Cluster:
    centres: TutoringCentres
    read: ReadStore
    nc: Client
    """The relay's connection (each service has its own, as its own NATS user)."""
    command_port: int
    query_port: int
    gateway_port: int


@dataclass(frozen=True)
class EventSide:
    """The store, the read models, each service's NATS connection, and the relay and
    projections running: what every HTTP service of a test cluster stands on."""

    centres: TutoringCentres
    read: ReadStore
    clients: dict[str, Client]
    """By NATS user: ``RELAY``, ``PROJECTIONS``, ``GATEWAY``."""


@asynccontextmanager
async def event_side(
    pg: PostgresServer,
    nats_server: NatsServer,
    environment: Mapping[str, str] | None = None,
    sheet_key: bytes | None = None,
) -> AsyncIterator[EventSide]:
    """``environment``: the settings of the store and read store (by default ``pg``'s, the
    read models on PostgreSQL too); ``sheet_key``: signs worksheet codes."""
    settings = environment or {"TUTORPULSE_READ_STORE": "postgres", **pg.env()}
    centres = TutoringCentres(load(EventStoreSettings, settings), sheet_key=sheet_key)
    read = open_read_store(load(ReadStoreSettings, settings))
    clients = {
        user: await connect(
            nats_server.address,
            name=f"tutorpulse-{user}",
            credentials=nats_server.credentials_for(user),
        )
        for user in (RELAY, PROJECTIONS, GATEWAY)
    }
    js = clients[RELAY].jetstream()
    await ensure_streams(js)
    lease = PostgresLease(
        postgres_conninfo(store_env(load(EventStoreSettings, settings))), "in-test"
    )
    relay = Relay(centres, centres.tracking(), js, lease)
    projections = ProjectionService(read, clients[PROJECTIONS])
    workers = [asyncio.create_task(relay.run()), asyncio.create_task(projections.run())]
    try:
        yield EventSide(centres, read, clients)
    finally:
        relay.stop()
        projections.stop()
        await asyncio.wait_for(asyncio.gather(*workers), 10)
        for client in clients.values():
            await client.close()
        read.close()
        centres.close()


@asynccontextmanager
async def running_cluster(
    pg: PostgresServer,
    nats_server: NatsServer,
    blobs: BlobStore | None = None,
    sheet_key: bytes | None = None,
) -> AsyncIterator[Cluster]:
    """``blobs``: where the command service keeps scans and the query API reads them (by
    default the store the settings name); ``sheet_key``: signs worksheet codes (none: paper
    work is not set up)."""
    async with event_side(pg, nats_server, sheet_key=sheet_key) as side:
        centres, read = side.centres, side.read
        servers = [await serve(command_app(centres, own_resources=False, blobs=blobs))]
        # The command app seals with a key store beside the events: the query API and the
        # gateway open their answers with it.
        assert centres.privacy is not None
        keys = centres.privacy.keys
        servers.append(await serve(query_app(read, own_resources=False, blobs=blobs, keys=keys)))
        gateway = gateway_app(read, side.clients[GATEWAY], Settings(resync_seconds=60), keys=keys)
        servers.append(await serve(gateway))
        try:
            yield Cluster(centres, read, side.clients[RELAY], *(port for _, _, port in servers))
        finally:
            for server, task, _ in servers:
                server.should_exit = True
                await asyncio.wait_for(task, 10)
