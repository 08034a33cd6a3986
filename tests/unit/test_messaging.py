"""NATS settings: credentials, stream limits, and the server's users (no server needed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nats.errors import AuthorizationError, StaleConnectionError, UnexpectedEOF
from nats.js import api
from structlog.testing import capture_logs

from shared.messaging import nats as messaging
from shared.messaging import stream_definitions
from shared.messaging.auth import (
    PERMISSIONS,
    deployment_template,
    generate_credentials,
    read_credentials_file,
    write_credentials_file,
)
from shared.messaging.nats import (
    ConnectionLog,
    NoNatsUser,
    connect,
    reconcile,
    resolve_credentials,
)
from shared.messaging.settings import (
    Credentials,
    NatsSettings,
    StreamSettings,
    parse_duration,
    parse_size,
)
from shared.settings import load

ROOT = Path(__file__).resolve().parents[2]


def stream(
    replicas: int, max_age: float | None = None, max_bytes: int | None = None
) -> api.StreamConfig:
    return api.StreamConfig(
        name="TP_EVENTS",
        subjects=["tp.evt.>"],
        num_replicas=replicas,
        max_age=max_age,
        max_bytes=max_bytes,
    )


def test_set_up_never_lowers_replicas_or_touches_an_operators_limits() -> None:
    wanted = stream(1, max_age=30 * 86400.0, max_bytes=-1)
    assert reconcile(stream(3, max_age=86400.0, max_bytes=2**30), wanted) is None
    assert reconcile(stream(1, max_age=86400.0), wanted) is None
    raised = reconcile(stream(1, max_age=86400.0, max_bytes=2**30), stream(3, max_age=1.0))
    assert raised is not None
    assert (raised.num_replicas, raised.max_age, raised.max_bytes) == (3, 86400.0, 2**30)


def test_stream_limits_are_settings() -> None:
    local = {c.name: c for c in stream_definitions(settings=load(StreamSettings, {}))}
    assert (local["TP_EVENTS"].num_replicas, local["TP_EVENTS"].max_age) == (1, 30 * 86400)
    assert (local["TP_DLQ"].max_age, local["TP_DLQ"].max_bytes) == (14 * 86400, -1)
    cluster = {
        c.name: c
        for c in stream_definitions(
            settings=load(
                StreamSettings,
                {"TUTORPULSE_NATS_REPLICAS": "3", "TUTORPULSE_NATS_EVENTS_MAX_BYTES": "20G"},
            )
        )
    }
    assert {c.num_replicas for c in cluster.values()} == {3}
    assert cluster["TP_EVENTS"].max_bytes == 20 * 2**30
    assert (parse_duration("90s"), parse_duration("15m"), parse_duration("3600")) == (90, 900, 3600)
    assert (parse_size("512M"), parse_size("8GB"), parse_size("-1")) == (512 * 2**20, 8 * 2**30, -1)
    for bad in ({"TUTORPULSE_NATS_REPLICAS": "0"}, {"TUTORPULSE_NATS_EVENTS_MAX_AGE": "soon"}):
        with pytest.raises(ValueError):
            stream_definitions(settings=load(StreamSettings, bad))


def test_who_a_process_is_on_nats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = Credentials("relay", "x")
    assert resolve_credentials("nats://h:4222", explicit) is explicit
    assert resolve_credentials("nats://gateway:p%40ss@h:4222") == Credentials("gateway", "p@ss")
    env = {"TUTORPULSE_NATS_USER": "projections", "TUTORPULSE_NATS_PASSWORD": "y"}
    configured = load(NatsSettings, env).credentials
    assert resolve_credentials("nats://h:4222", configured=configured) == Credentials(
        "projections", "y"
    )
    assert resolve_credentials("nats://gateway:p@h:4222", configured=configured) == Credentials(
        "gateway", "p"
    )  # the URL's user first
    assert load(NatsSettings, {}).credentials is None
    # make run's operator credentials are for operators' CLIs that ask for them, not services.
    monkeypatch.setattr(messaging, "LOCAL_CREDENTIALS", tmp_path)
    write_credentials_file(tmp_path / "ops.json", Credentials("ops", "o"))
    assert resolve_credentials("nats://h:4222") is None
    assert resolve_credentials("nats://h:4222", operator_fallback=True) == Credentials("ops", "o")
    write_credentials_file(tmp_path / "ops.json", Credentials("ops", "z"))
    assert (tmp_path / "ops.json").stat().st_mode & 0o077 == 0  # only its owner reads it
    assert read_credentials_file(tmp_path / "ops.json") == Credentials("ops", "z")
    assert "z" not in repr(read_credentials_file(tmp_path / "ops.json"))


def test_passwords_are_fresh_and_the_deployment_users_file_is_current() -> None:
    first, second = generate_credentials(), generate_credentials()
    users = {"relay", "projections", "gateway", "ops", "scheduler", "notifier"}
    assert set(first) == set(PERMISSIONS) == users
    assert all(
        first[u].password != second[u].password and len(first[u].password) >= 40 for u in first
    )
    assert (ROOT / "infra/nats/users.conf").read_text() == deployment_template(), (
        "run `python -m shared.messaging.server_config > infra/nats/users.conf`"
    )


def test_only_the_relay_may_publish_events_and_the_gateway_publishes_nothing() -> None:
    publishers = {
        user
        for user, allowed in PERMISSIONS.items()
        if any(s.startswith(("tp.evt", "tp.>", ">")) for s in allowed.publish)
    }
    assert publishers == {"relay"}
    assert PERMISSIONS["gateway"].publish == ()
    assert {u for u, a in PERMISSIONS.items() if "tp.delta.>" in a.publish} == {"projections"}
    assert {u for u, a in PERMISSIONS.items() if "tp.dlq.>" in a.publish} == {"projections"}


def allows(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` the rest."""
    wanted, given = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(given) > index
        if index >= len(given) or token not in ("*", given[index]):
            return False
    return len(wanted) == len(given)


def test_only_the_relay_may_create_or_change_a_stream() -> None:
    def may(user: str, subject: str) -> bool:
        return any(allows(pattern, subject) for pattern in PERMISSIONS[user].publish)

    for stream in ("TP_EVENTS", "TP_DLQ"):
        for verb in ("CREATE", "UPDATE", "DELETE", "PURGE"):
            assert {u for u in PERMISSIONS if may(u, f"$JS.API.STREAM.{verb}.{stream}")} == (
                {"relay"} if verb in ("CREATE", "UPDATE") else set()
            )
        # The projections read the streams' info (they wait for the relay to create them).
        assert may("projections", f"$JS.API.STREAM.INFO.{stream}")


async def test_a_service_without_a_nats_user_does_not_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LOCAL_CREDENTIALS", tmp_path)
    write_credentials_file(tmp_path / "ops.json", Credentials("ops", "o"))  # make run's
    with capture_logs() as logs, pytest.raises(NoNatsUser, match="no NATS user configured"):
        await connect("nats://127.0.0.1:9", name="tutorpulse-relay")
    assert [entry["event"] for entry in logs] == ["nats.no_user"]


async def test_an_outage_is_two_lines_however_many_reconnects_fail() -> None:
    connection = ConnectionLog("tutorpulse-relay", "nats://127.0.0.1:4222", "relay")
    with capture_logs() as logs:
        for _ in range(30):  # nats-py reports every failed attempt of the first connect
            await connection.on_error(ConnectionRefusedError(111, "Connect call failed"))
        connection.on_connect()
        await connection.on_disconnect()
        await connection.on_error(UnexpectedEOF())
        for _ in range(200):  # ... and of every reconnect, every 0.5 s
            await connection.on_error(ConnectionRefusedError(111, "Connect call failed"))
            await connection.on_error(TimeoutError())
        await connection.on_reconnect()
        await connection.on_error(StaleConnectionError())  # a frozen server, later
        await connection.on_reconnect()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [
        ("nats.waiting", "warning"),
        ("nats.connected", "info"),
        ("nats.disconnected", "info"),
        ("nats.unavailable", "error"),
        ("nats.reconnected", "info"),
        ("nats.recovered", "warning"),
        ("nats.unavailable", "error"),
        ("nats.reconnected", "info"),
        ("nats.recovered", "warning"),
    ]
    assert logs[1]["attempts"] == 31
    assert logs[5]["failures"] == 401 and logs[5]["name"] == "tutorpulse-relay"


async def test_refused_credentials_are_told_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    # ConnectionLog reads the process's monotonic clock (the ``time`` module itself).
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    connection = ConnectionLog("tutorpulse-gateway", "nats://127.0.0.1:4222", "gateway")
    with capture_logs() as logs:
        for _ in range(100):
            await connection.on_error(AuthorizationError())
            now[0] += 0.5  # 50 s
        now[0] += 10
        await connection.on_error(AuthorizationError())
    assert [(e["event"], e["user"]) for e in logs] == [
        ("nats.authorization_refused", "gateway")
    ] * 2
