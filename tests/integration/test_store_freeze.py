"""Every PostgreSQL process frozen (SIGSTOP: connections stay open, the kernel still accepts and
acknowledges, nothing answers) under a running command service and a query service, each its
own process: commands, reads and both /ready answer 503 with Retry-After instead of waiting on
the frozen server (their connections are given up after TUTORPULSE_POSTGRES_ANSWER_TIMEOUT),
each service logs the outage once, and once the server runs again both answer by themselves.
Every command sent during the freeze and retried afterwards with its Idempotency-Key is stored
exactly once, whether or not the server had received it before it froze."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from eventsourcing.persistence import OperationalError

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.eventstore.postgres import Unanswered
from shared.settings import load
from tests.builders import Centre, plan, register_centre
from tests.integration.test_relay_store_freeze import frozen_postgres
from tests.integration.test_store_outage import log_events, wait_for
from tests.support.requests import assert_unavailable, assert_unready, session_body
from tests.support.servers import PostgresServer, free_port, running_postgres

pytestmark = pytest.mark.integration

ANSWER_TIMEOUT = "2"
"""TUTORPULSE_POSTGRES_ANSWER_TIMEOUT for the services under test."""


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    with running_postgres(tmp_path / "pg") as server:
        yield server


class Service:
    """``python -m services.<name>`` on its own port, with its log in a file."""

    def __init__(self, name: str, port_variable: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        port = free_port()
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env={
                    **os.environ,
                    **env,
                    port_variable: str(port),
                    "TUTORPULSE_LOG_LEVEL": "INFO",
                    "TUTORPULSE_LOG_FORMAT": "json",
                },
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        # A request that waited on the frozen server would fail the test here, not hang it.
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        wait_for(lambda: self.status("/ready") == 200, f"{name} answers /ready", attempts=600)

    def status(self, path: str) -> int:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.http.get(path).status_code
        except httpx.TransportError:
            return 0

    def timed_get(self, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = self.http.get(path, **kwargs)  # type: ignore[arg-type]
        return response, time.monotonic() - started

    @property
    def ready_body(self) -> str:
        """What /ready says now (for a failure's message)."""
        return f"/ready 200 (it says {self.http.get('/ready').text})"

    def events(self) -> list[str]:
        return log_events(self.log)

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def schedule(command: Service, centre: Centre, key: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = command.http.post(
        "/api/v1/sessions",
        json=session_body(starts_in=timedelta(hours=2)),
        headers={**centre.auth("tutor"), "Idempotency-Key": key},
    )
    return response, time.monotonic() - started


MY_DAY = "/api/academic/tutor/my-day"


def test_a_frozen_postgres_makes_commands_reads_and_ready_answer_503_and_both_recover(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    centres = TutoringCentres(load(EventStoreSettings, own_postgres.env()))
    centre = register_centre(centres, "alpha")
    env = {**own_postgres.env(), "TUTORPULSE_POSTGRES_ANSWER_TIMEOUT": ANSWER_TIMEOUT}
    command = Service("command", "TUTORPULSE_COMMAND_PORT", env, tmp_path / "command.log")
    query = Service(
        "query",
        "TUTORPULSE_QUERY_PORT",
        # No projection runs here: the read models stay behind, which /ready forgives.
        env | {"TUTORPULSE_READ_STORE": "postgres", "TUTORPULSE_QUERY_LAG_GRACE_SECONDS": "3600"},
        tmp_path / "query.log",
    )
    keys: list[str] = []
    timings: dict[str, list[float]] = {}

    def timed(what: str, took: float) -> None:
        timings.setdefault(what, []).append(took)

    try:
        keys.append(str(uuid.uuid4()))
        response, _ = schedule(command, centre, keys[-1])
        assert response.status_code == 201, response.text
        answered = query.http.get(MY_DAY, headers=centre.auth("tutor")).status_code
        assert answered in (200, 404)  # no projection runs here: the tutor's day may be unknown

        with frozen_postgres(own_postgres):
            # One command at a time, then several at once (they share a transaction, or
            # wait for a connection), then one more: each is a 503, none waits on the server.
            for _ in range(2):
                keys.append(str(uuid.uuid4()))
                response, took = schedule(command, centre, keys[-1])
                assert_unavailable(response)
                timed("command 503", took)
            outcomes: list[tuple[httpx.Response, float]] = []
            at_once = [str(uuid.uuid4()) for _ in range(4)]
            keys.extend(at_once)
            threads = [
                threading.Thread(target=lambda k=key: outcomes.append(schedule(command, centre, k)))
                for key in at_once
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for response, took in outcomes:
                assert_unavailable(response)
                timed("concurrent command 503", took)
            response, took = command.timed_get("/ready")
            assert_unready(response)
            timed("command /ready 503", took)
            for _ in range(2):
                response, took = query.timed_get(MY_DAY, headers=centre.auth("tutor"))
                assert_unavailable(response)
                timed("query read 503", took)
            response, took = query.timed_get("/ready")
            assert_unready(response)
            timed("query /ready 503", took)
            keys.append(str(uuid.uuid4()))
            response, took = schedule(command, centre, keys[-1])
            assert_unavailable(response)
            timed("command 503", took)
            assert command.events().count("service.unavailable") == 1
            assert query.events().count("service.unavailable") == 1

        thawed = time.monotonic()
        # Every command of the freeze, retried with its key, is applied (or its stored answer
        # replayed) once the services see the server again, by themselves.
        for key in keys[1:]:

            def applied(key: str = key) -> bool:
                response, _ = schedule(command, centre, key)
                if response.status_code in (200, 201):
                    return True
                assert response.status_code == 503, response.text
                return False

            wait_for(applied, "the command is applied after the thaw", attempts=600)
        timed("command works again after the thaw", time.monotonic() - thawed)
        wait_for(lambda: command.status("/ready") == 200, command.ready_body, attempts=600)

        def reads_again() -> bool:
            status = query.http.get(MY_DAY, headers=centre.auth("tutor")).status_code
            assert status in (200, 404, 503), status
            return status != 503

        wait_for(reads_again, "the query service reads again", attempts=600)
        wait_for(lambda: query.status("/ready") == 200, query.ready_body, attempts=600)
        timed("both answer again after the thaw", time.monotonic() - thawed)
        for service in (command, query):
            wait_for(
                lambda s=service: "service.recovered" in s.events(),  # type: ignore[misc]
                "the recovery is logged",
                attempts=600,
            )
            assert service.process.poll() is None, "it recovered without a restart"
    finally:
        command.close()
        query.close()

    for service in (command, query):
        events = service.events()
        assert events.count("service.unavailable") == 1, events
        assert events.count("service.recovered") == 1, events
        assert "request.failed" not in events
        assert "request.erasure_check_unavailable" not in events  # not once per request
        # psycopg's cancellation of a statement (waiting on the frozen server) is never used.
        assert not [line for line in service.log.read_text().splitlines() if "cancel" in line]
    # One session per key: none lost, none stored twice, though some may have been committed
    # by the server after it thawed, for commands that had been answered 503.
    stored = [
        n
        for n in centres.recorder.select_notifications(1, 100_000)
        if n.topic == "SessionScheduled"
    ]
    assert len(stored) == len(keys)
    centres.close()
    print(
        "\n"
        + "\n".join(
            f"{what}: {', '.join(f'{seconds:.2f}' for seconds in values)} s"
            for what, values in timings.items()
        )
    )


def test_commands_on_a_frozen_store_fail_as_unanswered_and_the_store_works_after_the_thaw(
    own_postgres: PostgresServer,
) -> None:
    """In one process, under the command service: concurrent commands on a frozen server each
    fail with Unanswered (those queued behind the unanswered group fail with it, none waits on
    the server), and the same store commits again once the server runs, without a restart."""
    centres = TutoringCentres(
        load(
            EventStoreSettings,
            own_postgres.env() | {"TUTORPULSE_POSTGRES_ANSWER_TIMEOUT": ANSWER_TIMEOUT},
        )
    )
    try:
        tutor = register_centre(centres, "alpha")["tutor"]
        centres.handle(tutor, plan())
        outcomes: list[BaseException | None] = []

        def command() -> None:
            try:
                centres.handle(tutor, plan())
                outcomes.append(None)
            except BaseException as error:
                outcomes.append(error)

        with frozen_postgres(own_postgres):
            threads = [threading.Thread(target=command) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)  # a guard against a hang, not a measure
                assert not thread.is_alive(), "a command still waits on the frozen server"
        assert len(outcomes) == 6
        assert all(isinstance(error, Unanswered) for error in outcomes), outcomes
        assert centres.group_commit is not None and centres.group_commit.queued() == 0

        def commits() -> bool:
            try:
                centres.handle(tutor, plan())
            except Unanswered:
                return False
            except OperationalError:  # the pool has no connection yet
                return False
            return True

        wait_for(commits, "a command is stored after the thaw", attempts=600)
    finally:
        centres.close()
