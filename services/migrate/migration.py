"""What ``python -m services.migrate`` does (see :mod:`services.migrate`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from services.migrate.settings import MigrateSettings
from services.settings import start
from shared.eventstore import EventStore
from shared.eventstore.settings import SchemaSettings
from shared.eventstore.store import postgres_conninfo
from shared.messaging import connect, ensure_streams
from shared.privacy import FieldCipher, create_key_table, open_key_store
from shared.readmodels.store import PostgresSettings, open_read_store

log = structlog.get_logger(__name__)
PROGRAM = "migrate"

GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
)
"""What the services' role needs, no more: rows of every table (made now or later by the
migrating role), the notification ids' sequence, and nothing that creates or alters objects."""


def create_tables(settings: MigrateSettings) -> list[str]:
    """Every table the services use, made by the code that makes them at a service's start;
    the PostgreSQL connection strings of the databases touched (none on SQLite). It creates
    them whatever ``TUTORPULSE_CREATE_TABLES`` says (the services' setting, off in a deployment
    whose services may not create tables)."""
    creating = SchemaSettings(create_tables=True)
    settings = replace(
        settings,
        event_store=replace(settings.event_store, schema=creating),
        read_store=replace(settings.read_store, schema=creating),
    )
    store = EventStore(settings.event_store)
    try:
        store.snapshot_recorder()
        store.tracking()
        create_key_table(settings.event_store)
        databases = (
            [postgres_conninfo(store.env)] if settings.event_store.store == "postgres" else []
        )
    finally:
        store.close()
    log.info("migrate.event_store", store=settings.event_store.store)
    read_store = open_read_store(settings.read_store)
    try:
        generation = read_store.generation()
    finally:
        read_store.close()
    log.info("migrate.read_store", store=settings.read_store.store, generation=generation)
    if settings.read_store.store == "postgres":
        read = PostgresSettings.of(settings.read_store).conninfo
        if _database(read) not in {_database(known) for known in databases}:
            databases.append(read)
    return databases


def _database(conninfo: str) -> tuple[str, str, str]:
    parts = conninfo_to_dict(conninfo)
    return (str(parts.get("host")), str(parts.get("port")), str(parts.get("dbname")))


def grant_statements(role: str) -> Iterator[sql.Composed]:
    for statement in GRANTS:
        yield sql.SQL(statement).format(role=sql.Identifier(role))


def grant(databases: Sequence[str], role: str) -> None:
    """Give ``role`` the services' rights in each database (see :data:`GRANTS`)."""
    for conninfo in databases:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            for statement in grant_statements(role):
                connection.execute(statement)
    log.info("migrate.granted", role=role, databases=len(databases))


async def create_streams(settings: MigrateSettings) -> None:
    """The streams of ``infra/nats/streams.json`` as the relay creates them at its start."""
    client = await connect(settings.nats, name="migrate")
    try:
        await ensure_streams(client.jetstream(), settings.streams)
    finally:
        await client.close()
    log.info("migrate.streams", replicas=settings.streams.replicas)


def seal_the_past(settings: MigrateSettings) -> None:
    """``privacy``: the events written before sealing, sealed in place (see
    :mod:`services.migrate.privacy`), and what the operator does next."""
    from services.migrate import privacy

    create_tables(settings)
    keys = open_key_store(
        PROGRAM, settings.event_store, settings.privacy, dev_mode=settings.dev_mode
    )
    store = EventStore(settings.event_store)
    try:
        result = privacy.run(store, FieldCipher(keys), settings.event_store)
    finally:
        store.close()
        keys.close()
    print(
        f"{result.events} events read up to notification {result.position}: "
        f"{result.rewritten} rewritten sealed ({result.erased} of them about a person erased "
        f"already: their texts now read [erased]), {result.snapshots} snapshots deleted."
    )
    print(privacy.NEXT_STEPS)


def rewrap_keys(settings: MigrateSettings) -> int:
    """``rewrap``: after a master key rotation (a new key listed first in
    ``TUTORPULSE_PRIVACY_MASTER_KEYS``, the old ones after it), every data key wrapped by an older
    master key is wrapped again by the first; then the old master keys can be removed. Needs
    only the services' rights (rows of the key table), so it runs in a service's pod."""
    keys = open_key_store(
        PROGRAM, settings.event_store, settings.privacy, dev_mode=settings.dev_mode
    )
    try:
        done = keys.rewrap()
    finally:
        keys.close()
    print(
        f"{done} data keys wrapped again with the first master key; once every service runs "
        "with it first, the older master keys can be removed from "
        "TUTORPULSE_PRIVACY_MASTER_KEYS."
    )
    return done


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.migrate",
        description="Create every table the services use (then grant the services' role its "
        "rights), or the JetStream streams, before the services start.",
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=("tables", "streams", "privacy", "rewrap"),
        default="tables",
        help="tables (the default: every table, then the grants), streams, privacy (seal "
        "the personal texts of events written before sealing, in place: docs/privacy.md), or "
        "rewrap (after a master key rotation, wrap every data key with the first master key)",
    )
    arguments = parser.parse_args(argv)
    settings = start(MigrateSettings, PROGRAM)
    if arguments.what == "streams":
        asyncio.run(create_streams(settings))
        return
    if arguments.what == "privacy":
        seal_the_past(settings)
        return
    if arguments.what == "rewrap":
        rewrap_keys(settings)
        return
    databases = create_tables(settings)
    if settings.grant_to is not None:
        if not databases:
            raise SystemExit(f"{PROGRAM}: TUTORPULSE_MIGRATE_GRANT_TO needs PostgreSQL stores")
        grant(databases, settings.grant_to)
