"""The whole chain for a browser: command, relay, projections, query and gateway in the test
process, on PostgreSQL and a real nats-server, each HTTP service on a port chosen before any
starts, so that the gateway's page knows where the APIs are and they allow its origin. The
gateway can be stopped and started again on its port, as a network drop looks to a browser."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from litestar import Litestar
from nats.aio.client import Client

from services.cluster_ha import free_ports
from services.command.application import TutoringCentres
from services.command.http.app import create_app as command_app
from services.command.settings import CommandSettings
from services.live_gateway.app import create_app as gateway_app
from services.live_gateway.hub import Settings
from services.live_gateway.settings import GatewaySettings
from services.query.app import create_app as query_app
from services.query.settings import QuerySettings
from shared.messaging.auth import GATEWAY
from shared.readmodels.store import ReadStore
from shared.settings import load
from tests.integration.cluster import event_side
from tests.support.servers import NatsServer, PostgresServer


@dataclass
class Served:
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def serve(app: Litestar, port: int) -> Served:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws_ping_interval=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # the port was not free: say why
            await task
            raise RuntimeError(f"uvicorn did not start on port {port}")
        await asyncio.sleep(0.01)
    return Served(server, task)


@dataclass
class WebCluster:
    centres: TutoringCentres
    read: ReadStore
    command_port: int
    query_port: int
    gateway_port: int
    gateway_settings: GatewaySettings
    gateway_nats: Client
    gateway: Served | None = field(default=None)

    @property
    def page(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/web/"

    async def start_gateway(self) -> None:
        """The gateway opens frames with the key store the command app seals with."""
        assert self.centres.privacy is not None
        app = gateway_app(
            self.read,
            self.gateway_nats,
            Settings(resync_seconds=60),
            gateway=self.gateway_settings,
            keys=self.centres.privacy.keys,
        )
        self.gateway = await serve(app, self.gateway_port)

    async def stop_gateway(self) -> None:
        """Every websocket to it closes, as when the network between goes away."""
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

    async def caught_up(self) -> None:
        """The read models reflect every event stored so far."""
        while self.read.watermark() < self.centres.position:
            await asyncio.sleep(0.02)


@asynccontextmanager
async def web_cluster(pg: PostgresServer, nats_server: NatsServer) -> AsyncIterator[WebCluster]:
    command_port, query_port, gateway_port = free_ports(3)
    environment = {
        **os.environ,
        **pg.env(),
        "TUTORPULSE_COMMAND_PORT": str(command_port),
        "TUTORPULSE_QUERY_PORT": str(query_port),
        "TUTORPULSE_GATEWAY_PORT": str(gateway_port),
        "TUTORPULSE_CORS_ORIGINS": f"http://127.0.0.1:{gateway_port}",
        "TUTORPULSE_READ_STORE": "postgres",
    }
    async with event_side(pg, nats_server, environment) as side:
        apis = [
            await serve(
                command_app(
                    side.centres, own_resources=False, settings=load(CommandSettings, environment)
                ),
                command_port,
            ),
            await serve(
                query_app(
                    side.read,
                    own_resources=False,
                    settings=load(QuerySettings, environment),
                    # The command app seals with a key store beside the events: the query API
                    # (and the gateway) open their answers with it.
                    keys=side.centres.privacy.keys if side.centres.privacy is not None else None,
                ),
                query_port,
            ),
        ]
        cluster = WebCluster(
            side.centres,
            side.read,
            command_port,
            query_port,
            gateway_port,
            load(GatewaySettings, environment),
            side.clients[GATEWAY],
        )
        await cluster.start_gateway()
        try:
            yield cluster
        finally:
            await cluster.stop_gateway()
            for served in apis:
                await served.stop()
