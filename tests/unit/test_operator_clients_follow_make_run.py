"""The live client and the stream tail find the cluster that ``make run`` started on other
ports through the same variables, and say where they connect."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from services.live_gateway.settings import LiveClientSettings
from shared.messaging.settings import TailSettings
from shared.settings import load


def test_the_tail_follows_make_runs_nats_port_unless_given_a_url() -> None:
    assert load(TailSettings, {}).url == "nats://127.0.0.1:4222"
    assert load(TailSettings, {"TUTORPULSE_NATS_PORT": "4300"}).url == "nats://127.0.0.1:4300"
    given = {"TUTORPULSE_NATS_PORT": "4300", "TUTORPULSE_NATS_URL": "nats://nats.internal:4222"}
    assert load(TailSettings, given).url == "nats://nats.internal:4222"


def test_the_live_client_follows_make_runs_gateway_port() -> None:
    assert load(LiveClientSettings, {}).url == "ws://127.0.0.1:8013/live"
    assert load(LiveClientSettings, {"TUTORPULSE_GATEWAY_PORT": "9013"}).url == (
        "ws://127.0.0.1:9013/live"
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on while the test runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def first_lines(command: list[str], env: dict[str, str], count: int) -> list[str]:
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        return [process.stderr.readline().strip() for _ in range(count)]
    finally:
        process.kill()
        process.wait()


def test_the_live_client_says_where_it_connects_and_why_it_cannot(closed_port: int) -> None:
    env = {"TUTORPULSE_GATEWAY_PORT": str(closed_port), "PATH": ""}
    command = [sys.executable, "-m", "services.live_gateway.client", "--token", "t", "--my-day"]
    following, failing = first_lines(command, env, 2)
    assert following == f"following my-day at ws://127.0.0.1:{closed_port}/live"
    assert failing.startswith(f"cannot reach ws://127.0.0.1:{closed_port}/live")


def test_the_tail_says_where_it_connects(closed_port: int) -> None:
    env = {"TUTORPULSE_NATS_PORT": str(closed_port), "PATH": ""}
    command = [sys.executable, "-m", "shared.messaging.tail", "--centre", "main-campus"]
    (following,) = first_lines(command, env, 1)
    assert following == f"following tp.evt.main-campus.> at nats://127.0.0.1:{closed_port}"
