"""/ready answers within its time limit whatever the check does, carries the check's details,
runs one check at a time, and an outage is logged once when it starts and once when it ends."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from structlog.testing import capture_logs

from shared.http.operations import NotReady, operations_router
from shared.http.problems import BASE_HANDLERS, store_unavailable
from shared.http.settings import ReadinessSettings
from shared.observability.outage import OutageLog
from shared.settings import load


def client_for(
    check: Any, monkeypatch: pytest.MonkeyPatch, timeout: str = "0.3"
) -> TestClient[Litestar]:
    monkeypatch.setenv("TUTORPULSE_READY_TIMEOUT_SECONDS", timeout)
    settings = load(ReadinessSettings)
    return TestClient(
        Litestar(
            route_handlers=[operations_router("svc", check, timeout=settings.timeout_seconds)],
            exception_handlers=BASE_HANDLERS,
        )
    )


def test_a_hanging_check_is_a_503_within_the_time_limit_and_is_not_started_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    started = []

    async def check() -> None:
        started.append(1)
        await asyncio.to_thread(release.wait, 30)

    with client_for(check, monkeypatch) as client:
        for _ in range(3):
            began = time.monotonic()
            response = client.get("/ready")
            assert time.monotonic() - began < 1
            assert response.status_code == 503
            assert "did not answer within 0.3 s" in response.json()["reason"]
        assert len(started) == 1, "probes wait for the running check instead of piling up"
        release.set()
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.02)
        assert client.get("/ready").status_code == 200


def test_details_are_in_the_body_whether_ready_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"lag": 0}

    async def check() -> dict[str, int]:
        if state["lag"] > 10:
            raise NotReady("too far behind", {"lagEvents": state["lag"]})
        return {"lagEvents": state["lag"]}

    with client_for(check, monkeypatch) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "service": "svc", "details": {"lagEvents": 0}}
        state["lag"] = 31
        unready = client.get("/ready")
        assert unready.status_code == 503
        assert unready.json() == {
            "status": "unavailable",
            "service": "svc",
            "reason": "too far behind",
            "details": {"lagEvents": 31},
        }


def test_a_check_that_returns_nothing_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    async def check() -> None:
        raise ConnectionError("NATS is not connected")

    with client_for(check, monkeypatch) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["reason"] == "ConnectionError: NATS is not connected"


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() -> None:
    outages = OutageLog("store", service="svc")
    with capture_logs() as logs:
        assert outages.failed("connection refused")
        for _ in range(50):
            assert not outages.failed("connection refused")
        assert outages.current is not None and outages.current.failures == 51
        assert outages.succeeded()
        assert not outages.succeeded()
    assert [entry["event"] for entry in logs] == ["store.unavailable", "store.recovered"]
    assert logs[1]["failures"] == 51 and logs[1]["service"] == "svc"


def test_which_errors_say_a_store_is_unreachable() -> None:
    import sqlite3

    import eventsourcing.persistence as es
    import psycopg
    from psycopg_pool import PoolTimeout

    def wrapped(error: Exception, cls: type[es.PersistenceError]) -> es.PersistenceError:
        outer = cls(str(error))
        outer.__cause__ = error
        return outer

    assert store_unavailable(PoolTimeout("couldn't get a connection after 3.00 sec"))
    assert store_unavailable(wrapped(psycopg.OperationalError("refused"), es.OperationalError))
    assert store_unavailable(es.InterfaceError("the connection is closed"))
    assert store_unavailable(
        wrapped(sqlite3.OperationalError("database is locked"), es.OperationalError)
    )
    assert not store_unavailable(
        wrapped(sqlite3.OperationalError("no such table: x"), es.OperationalError)
    )
    assert not store_unavailable(es.IntegrityError("duplicate key"))
    assert not store_unavailable(ValueError("bug"))
