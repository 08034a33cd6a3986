"""The server helpers start real processes and leave nothing behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import nats
import psycopg
import pytest

from tests.support.servers import running_nats, running_postgres

pytestmark = pytest.mark.integration


def _refuses(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) != 0


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_postgres_answers_then_is_gone(tmp_path: Path) -> None:
    with running_postgres(tmp_path) as server:
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            row = conn.execute("show data_directory").fetchone()
            assert row is not None
            data_directory = Path(row[0])
        assert server.env()["TUTORPULSE_POSTGRES_PORT"] == str(server.port)
        other = server.fresh_database("selfcheck")
        with psycopg.connect(other.dsn()) as conn:
            assert conn.execute("select current_database()").fetchone() == ("selfcheck",)

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn(), connect_timeout=2).close()
    assert _refuses(server.host, server.port)
    assert not data_directory.exists()


@pytest.mark.asyncio
async def test_nats_jetstream_deduplicates_then_is_gone(tmp_path: Path) -> None:
    with running_nats(tmp_path / "nats") as server:
        client = await nats.connect(server.url)
        try:
            js = client.jetstream()
            await js.add_stream(name="SELFCHECK", subjects=["selfcheck.>"])
            headers = {"Nats-Msg-Id": "selfcheck-1"}
            first = await js.publish("selfcheck.one", b"hello", headers=headers)
            again = await js.publish("selfcheck.one", b"hello", headers=headers)
            assert not first.duplicate
            assert again.duplicate
            info = await js.stream_info("SELFCHECK")
            assert info.state.messages == 1
        finally:
            await client.close()
        assert server.store_dir.is_dir()

    assert _process_gone(server.pid)
    host, port = server.address.removeprefix("nats://").rsplit(":", 1)
    assert _refuses(host, int(port))
