"""NATS requires credentials, and each service's user can do only that service's job
(the test server runs with the production permissions of ``shared.messaging.auth``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js.errors import NotFoundError

from shared.events import STREAM_NAME
from shared.messaging import NatsSettings, connect, ensure_streams
from shared.messaging.auth import GATEWAY, OPS, PROJECTIONS, RELAY, inbox_prefix
from shared.settings import load
from tests.support.servers import NatsServer

pytestmark = pytest.mark.integration

FORGED_SUBJECT = (
    "tp.evt.main-campus.exercise.0b9e1c1e-0000-4000-8000-000000000000.ExercisePublished"
)
FORGED = b'{"title":"FORGED via NATS"}'


class Watched:
    """A client logged in as one user, with the errors the server sent it."""

    def __init__(self, client: Client, errors: asyncio.Queue[str]) -> None:
        self.client = client
        self.errors = errors

    async def refused(self, what: str) -> str:
        """The next permissions violation the server reported (there must be one)."""
        error = (await asyncio.wait_for(self.errors.get(), 10)).lower()
        assert "permissions violation" in error and what.lower() in error, error
        return error


@asynccontextmanager
async def logged_in(server: NatsServer, user: str) -> AsyncIterator[Watched]:
    errors: asyncio.Queue[str] = asyncio.Queue()

    async def on_error(error: Exception) -> None:
        await errors.put(str(error))

    who = server.credentials_for(user)
    client = await nats.connect(
        server.address,
        user=who.user,
        password=who.password,
        inbox_prefix=inbox_prefix(who.user),
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        yield Watched(client, errors)
    finally:
        await client.close()


async def events_in_stream(nc: Client) -> int:
    return (await nc.jetstream().stream_info(STREAM_NAME)).state.messages


async def test_only_the_relay_can_publish_an_event(nats_server: NatsServer, nc: Client) -> None:
    await ensure_streams(nc.jetstream())

    # No credentials, or a wrong password: no connection at all.
    with pytest.raises((NoServersError, NatsError)):
        await nats.connect(nats_server.address, allow_reconnect=False, connect_timeout=5)
    with pytest.raises((NoServersError, NatsError)):
        await nats.connect(
            nats_server.address,
            user=RELAY,
            password="guessed",
            allow_reconnect=False,
            connect_timeout=5,
        )

    # The gateway, the projections and operators are refused, and nothing reaches TP_EVENTS.
    for user in (GATEWAY, PROJECTIONS, OPS):
        async with logged_in(nats_server, user) as intruder:
            await intruder.client.publish(FORGED_SUBJECT, FORGED)
            await intruder.refused(f'Publish to "{FORGED_SUBJECT}"')
    assert await events_in_stream(nc) == 0

    # The relay's publish is stored and acknowledged.
    async with logged_in(nats_server, RELAY) as relay:
        ack = await relay.client.jetstream().publish(
            FORGED_SUBJECT, b"{}", headers={"Nats-Msg-Id": "tutorpulse:1"}
        )
        assert ack.stream == STREAM_NAME and ack.seq == 1
        assert relay.errors.empty()
    assert await events_in_stream(nc) == 1


async def test_the_gateway_only_hears_change_notices(nats_server: NatsServer) -> None:
    async with (
        logged_in(nats_server, GATEWAY) as gateway,
        logged_in(nats_server, PROJECTIONS) as projections,
    ):
        notices: asyncio.Queue[str] = asyncio.Queue()

        async def heard(message: Msg) -> None:
            await notices.put(message.subject)

        await gateway.client.subscribe("tp.delta.>", cb=heard)
        # One flush right after connecting does not always put the subscription before another
        # client's publish (nats-py, about 1 run in 25), so announce until the gateway hears it.
        heard_one = asyncio.create_task(notices.get())
        async with asyncio.timeout(10):
            while not heard_one.done():
                await projections.client.publish("tp.delta.main-campus.session.s1", b"{}")
                await asyncio.wait({heard_one}, timeout=0.05)
        assert heard_one.result() == "tp.delta.main-campus.session.s1"
        assert projections.errors.empty()

        # It may neither read the events nor another user's replies, nor send a notice.
        await gateway.client.subscribe("tp.evt.>")
        await gateway.refused('Subscription to "tp.evt.>"')
        await gateway.client.subscribe(f"{inbox_prefix(PROJECTIONS)}.>")
        await gateway.refused(f'Subscription to "{inbox_prefix(PROJECTIONS)}.>"')
        await gateway.client.publish("tp.delta.main-campus.session.s1", b"{}")
        await gateway.refused('Publish to "tp.delta.main-campus.session.s1"')


async def test_operators_read_both_streams_and_change_nothing_else(
    nats_server: NatsServer, nc: Client
) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    await js.publish("tp.dlq.projections.tp.evt.c.session.s.Broken", b"{}")
    async with logged_in(nats_server, OPS) as ops:
        ojs = ops.client.jetstream()
        dead = await ojs.subscribe("tp.dlq.>", ordered_consumer=True)
        assert (await dead.next_msg(timeout=10)).subject.endswith(".Broken")
        await dead.unsubscribe()
        assert await ojs.delete_msg("TP_DLQ", 1)
        # …but may not remove the projections' consumer or an event, or purge a stream.
        for forbidden in (
            f"$JS.API.CONSUMER.DELETE.{STREAM_NAME}.projections",
            f"$JS.API.STREAM.MSG.DELETE.{STREAM_NAME}",
            f"$JS.API.STREAM.PURGE.{STREAM_NAME}",
            "$JS.API.STREAM.DELETE.TP_DLQ",
        ):
            await ops.client.publish(forbidden, b"{}")
            await ops.refused(f'Publish to "{forbidden}"')


async def test_only_the_relay_may_create_or_change_a_stream(
    nats_server: NatsServer, nc: Client
) -> None:
    """The projections read the streams' info, but may not create one nor change its retention;
    the relay may (it sets them up)."""
    async with logged_in(nats_server, PROJECTIONS) as projections:
        pjs = projections.client.jetstream()
        with pytest.raises(NotFoundError):  # allowed to ask: the answer is "not there yet"
            await pjs.stream_info(STREAM_NAME)
        for verb in ("CREATE", "UPDATE"):
            subject = f"$JS.API.STREAM.{verb}.{STREAM_NAME}"
            await projections.client.publish(subject, b'{"name":"TP_EVENTS","max_age":1}')
            await projections.refused(f'Publish to "{subject}"')
    with pytest.raises(NotFoundError):  # nothing was created
        await nc.jetstream().stream_info(STREAM_NAME)
    async with logged_in(nats_server, RELAY) as relay:
        await ensure_streams(relay.client.jetstream())
        events = (await relay.client.jetstream().stream_info(STREAM_NAME)).config
        changed = await relay.client.jetstream().update_stream(events.evolve(max_msgs=10**9))
        assert changed.config.max_msgs == 10**9 and relay.errors.empty()
    async with logged_in(nats_server, PROJECTIONS) as projections:
        assert (
            await projections.client.jetstream().stream_info(STREAM_NAME)
        ).config.max_msgs == 10**9
        assert projections.errors.empty()


async def test_services_log_in_from_their_environment(
    nats_server: NatsServer, nc: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a deployment does: the URL and the service's own user come from the environment."""
    await ensure_streams(nc.jetstream())
    for name, value in nats_server.env_for(RELAY).items():
        monkeypatch.setenv(name, value)
    client = await connect(load(NatsSettings), name="tutorpulse-relay")
    try:
        ack = await client.jetstream().publish(FORGED_SUBJECT, b"{}")
        assert ack.seq == 1
    finally:
        await client.close()
