"""TUTORPULSE_NATS_URL may name a cluster's servers, comma-separated: a service starts with
whichever answers, so a replica (re)started while one of them is down still connects."""

from __future__ import annotations

import pytest

from shared.messaging import connect
from shared.messaging.auth import RELAY
from shared.messaging.settings import NatsSettings, server_urls
from shared.settings import load
from tests.support.servers import NatsServer, free_port

pytestmark = pytest.mark.integration


def test_a_url_list_is_split_and_trimmed() -> None:
    assert server_urls("nats://a:1, nats://b:2 ,,nats://c:3") == [
        "nats://a:1",
        "nats://b:2",
        "nats://c:3",
    ]
    assert server_urls("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]


async def test_a_service_connects_through_the_server_that_answers(nats_server: NatsServer) -> None:
    nobody = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    settings = load(
        NatsSettings,
        {**nats_server.env_for(RELAY), "TUTORPULSE_NATS_URL": f"{nobody},{nats_server.address}"},
    )
    assert settings.servers == [nobody, nats_server.address]
    client = await connect(settings, name="test-list")
    try:
        assert client.is_connected
        assert client.connected_url is not None
        assert client.connected_url.port == int(nats_server.address.rsplit(":", 1)[1])
        await client.flush(timeout=2)
    finally:
        await client.close()
