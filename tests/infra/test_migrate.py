"""``python -m services.migrate`` makes every table as the database's owner, and the grants it
gives the services' role are enough for everything a service does with rows: append and read
events, snapshots, the relay's tracking, and read-model transactions. The role can make no
table. ``python -m services.migrate streams`` sets up the streams as the relay's user."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import nats
import psycopg
import pytest
from eventsourcing.persistence import Tracking

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterCentre
from services.projections.rebuild import rebuild
from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.messaging.auth import DLQ_STREAM, EVENTS_STREAM, NOTIFY_STREAM, TIMERS_STREAM
from shared.readmodels.documents import CENTRE
from shared.readmodels.projector import apply_all
from shared.readmodels.store import (
    PostgresReadStore,
    PostgresSettings,
    ReadStoreSettings,
    open_read_store,
)
from shared.schema import STARTUP_FAILURE, MissingTables
from shared.settings import load
from tests.builders import ROOT as ROOT_ACTOR
from tests.support.servers import PostgresServer, running_nats
from tests.support.service_process import run_module

pytestmark = pytest.mark.integration
APP_ROLE, APP_PASSWORD = "tutorpulse_app", "app-password"
TABLES = {
    "tutorpulse_events",
    "tutorpulse_snapshots",
    "tutorpulse_tracking",
    "rm_meta",
    "rm_docs_1",
    "rm_log_1",
    "rm_versions_1",
    "rm_skipped_1",
}


def tables(server: PostgresServer) -> set[str]:
    with psycopg.connect(server.dsn()) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def migrate(server: PostgresServer, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env(), "TUTORPULSE_READ_STORE": "postgres", **extra}
    return run_module("services.migrate", env=env)


@pytest.fixture
def app_role(pg: PostgresServer) -> Iterator[PostgresServer]:
    """A login role with no rights of its own, in a database whose schema nobody else may
    create objects in (as a managed PostgreSQL gives it)."""
    with psycopg.connect(pg.dsn(), autocommit=True) as connection:
        connection.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
        connection.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
        connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    yield replace(pg, user=APP_ROLE, password=APP_PASSWORD)
    with psycopg.connect(pg.dsn(), autocommit=True) as connection:
        connection.execute(f"DROP OWNED BY {APP_ROLE}")
        connection.execute(f"DROP ROLE {APP_ROLE}")


NO_DDL = {"TUTORPULSE_CREATE_TABLES": "false", "TUTORPULSE_READ_STORE": "postgres"}
"""How a deployment runs the services: the stores create no table at start."""


def test_migrate_makes_every_table_once_and_again_changes_nothing(pg: PostgresServer) -> None:
    first = migrate(pg)
    assert first.returncode == 0, first.stderr
    made = tables(pg)
    assert made >= TABLES
    again = migrate(pg)
    assert again.returncode == 0, again.stderr
    assert tables(pg) == made


def test_services_on_the_granted_role_append_track_project_and_follow_a_rebuild(
    pg: PostgresServer, app_role: PostgresServer
) -> None:
    done = migrate(pg, TUTORPULSE_MIGRATE_GRANT_TO=APP_ROLE, TUTORPULSE_CREATE_TABLES="false")
    assert done.returncode == 0, done.stderr
    env = {**app_role.env(), **NO_DDL}

    centres = TutoringCentres(load(EventStoreSettings, env))  # the events and snapshots opened
    try:  # a command appends its events (the events table's lock, the notification ids)
        result = centres.handle(
            ROOT_ACTOR, RegisterCentre(centre_id="granted", name="Granted centre")
        )
        assert result.position is not None
        stored = centres.recorder.select_notifications(0, 10)
        tracking = centres.tracking()  # the relay records how far it got
        tracking.insert_tracking(Tracking("relay", result.position))
        assert tracking.max_tracking_id("relay") == result.position
    finally:
        centres.close()

    store = open_read_store(load(ReadStoreSettings, env))
    try:  # the projection applies them: row and advisory locks, documents, versions, log
        assert store.ensure_ready() == 1  # what the projection service does at its start
        apply_all(store, [(events.decode(n.state, n.topic), n.id) for n in stored])
        store.advance_watermark(result.position)
        centre = store.get(CENTRE, "granted")
        assert centre is not None and store.watermark() == result.position

        # A rebuild, as the owner with the same settings, makes and fills the next generation
        # and switches to it; the services' role reads it at once.
        owner_env = {**pg.env(), **NO_DDL}
        owner_events = EventStore(load(EventStoreSettings, owner_env))
        owner_read = open_read_store(load(ReadStoreSettings, owner_env))
        try:
            rebuilt = rebuild(owner_events, owner_read, settle_timeout=5.0)
        finally:
            owner_events.close()
            owner_read.close()
        assert rebuilt.generation == 2 and rebuilt.events == len(stored)
        assert store.generation() == 2
        assert store.get(CENTRE, "granted") == centre
    finally:
        store.close()

    connection = psycopg.connect(app_role.dsn() + f" password={APP_PASSWORD}")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("CREATE TABLE intruder (id int)")
    finally:
        connection.close()


def test_without_the_migration_a_store_names_the_missing_table_and_the_migration(
    pg: PostgresServer,
) -> None:
    env = {**pg.env(), **NO_DDL}
    with pytest.raises(MissingTables) as events_missing:
        TutoringCentres(load(EventStoreSettings, env))
    assert events_missing.value.tables == ("tutorpulse_events",)
    assert "python -m services.migrate" in str(events_missing.value)
    with pytest.raises(MissingTables) as read_missing:
        open_read_store(load(ReadStoreSettings, env))
    assert read_missing.value.tables == ("rm_meta",)
    assert tables(pg) == set()  # and nothing was created on the way


def test_a_service_started_before_the_migration_stops_with_one_line_saying_so(
    pg: PostgresServer,
) -> None:
    started = (  # the command API with two workers, each of which would stop on its own
        ("services.command", {"TUTORPULSE_COMMAND_PORT": "0", "TUTORPULSE_COMMAND_WORKERS": "2"}),
        ("services.relay", {"TUTORPULSE_RELAY_PORT": "0"}),
        ("services.projections", {"TUTORPULSE_PROJECTIONS_PORT": "0"}),
        ("services.query", {"TUTORPULSE_QUERY_PORT": "0"}),
        ("services.live_gateway", {"TUTORPULSE_GATEWAY_PORT": "0"}),
        ("services.scheduler", {"TUTORPULSE_SCHEDULER_PORT": "0"}),
        ("services.notifier", {"TUTORPULSE_NOTIFIER_PORT": "0"}),
    )
    for program, extra in started:
        env = {**pg.env(), **NO_DDL, "TUTORPULSE_DEV_MODE": "yes", **extra}
        done = run_module(program, env=env, timeout=20)
        assert done.returncode == STARTUP_FAILURE, (program, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, (program, done.stderr)
        said = [line for line in done.stdout.splitlines() if "store.tables_missing" in line]
        assert len(said) == 1, (program, done.stdout)  # once, not once per worker
        on_events = program in ("services.command", "services.relay", "services.scheduler")
        missing = "tutorpulse_events" if on_events else "rm_meta"
        assert missing in said[0] and "python -m services.migrate" in said[0], said
    assert tables(pg) == set()


def test_a_rebuilds_new_generation_is_granted_by_default(
    pg: PostgresServer, app_role: PostgresServer
) -> None:
    assert migrate(pg, TUTORPULSE_MIGRATE_GRANT_TO=APP_ROLE).returncode == 0
    settings = load(ReadStoreSettings, {**pg.env(), "TUTORPULSE_READ_STORE": "postgres"})
    owner = PostgresReadStore(PostgresSettings.of(settings).conninfo)
    try:
        generation = owner.create_generation()
    finally:
        owner.close()
    with psycopg.connect(app_role.dsn() + f" password={APP_PASSWORD}", autocommit=True) as c:
        c.execute(f"INSERT INTO rm_versions_{generation} VALUES ('a', 1)")
        assert c.execute(f"SELECT version FROM rm_versions_{generation}").fetchone() == (1,)


async def test_the_streams_job_sets_up_every_stream_as_the_relay(tmp_path: Path) -> None:
    with running_nats(tmp_path / "nats") as server:
        env = {**server.env_for("relay"), "TUTORPULSE_NATS_REPLICAS": "1"}
        done = run_module("services.migrate", "streams", env=env)
        assert done.returncode == 0, done.stderr
        client = await nats.connect(server.url)  # the harness user
        try:
            js = client.jetstream()
            for stream in (EVENTS_STREAM, DLQ_STREAM, TIMERS_STREAM, NOTIFY_STREAM):
                assert (await js.stream_info(stream)).config.num_replicas == 1
        finally:
            await client.close()
        again = run_module("services.migrate", "streams", env=env)
        assert again.returncode == 0, again.stderr  # a second release runs it again
