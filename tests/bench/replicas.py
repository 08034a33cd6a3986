"""Projection replicas sharing one durable consumer over a backlog whose batches keep touching
the same items (a few sessions marked round after round, as after an outage at a busy centre):
one replica, then two, each from the same stream into a read store of its own run.

Replicas compete for deliveries, so one often gets an event whose predecessor the other holds;
the report gives the events refused that way per event applied. Both replicas run in this
process (one interpreter, one core's worth of Python between them): the rows show what the
contention costs, not what a second process on a second core would add.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

import nats
from prometheus_client import REGISTRY

from services.command.application import TutoringCentres
from services.projections.service import ProjectionService, collect_garbage_less
from shared.eventstore import EventStoreSettings
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load
from tests.bench.read_side import cpu_seconds, populate, stream_afresh
from tests.support.servers import NatsServer, PostgresServer, running_nats, running_postgres

SESSIONS = int(os.environ.get("BENCH_REPLICAS_SESSIONS", "20"))
ROUNDS = int(os.environ.get("BENCH_REPLICAS_ROUNDS", "80"))


def _refused() -> float:
    refused = REGISTRY.get_sample_value(
        "tutorpulse_projection_events_total", {"outcome": "out_of_order"}
    )
    return refused or 0.0


async def drain(
    url: str, read_db: PostgresServer, replicas: int, head: int, durable: str
) -> tuple[float, float, float]:
    """Seconds until ``replicas`` replicas took the watermark to ``head``, seconds of CPU,
    and events refused as out of order."""
    env = {
        "TUTORPULSE_READ_STORE": "postgres",
        "TUTORPULSE_READ_POSTGRES_HOST": read_db.host,
        "TUTORPULSE_READ_POSTGRES_PORT": str(read_db.port),
        "TUTORPULSE_READ_POSTGRES_USER": read_db.user,
        "TUTORPULSE_READ_POSTGRES_DBNAME": read_db.dbname,
    }
    stores = [open_read_store(load(ReadStoreSettings, env)) for _ in range(replicas)]
    clients = [await nats.connect(url) for _ in range(replicas)]
    services = [
        ProjectionService(store, client, durable=durable)
        for store, client in zip(stores, clients, strict=True)
    ]
    thresholds = collect_garbage_less()
    refused, started, cpu = _refused(), time.perf_counter(), cpu_seconds()
    tasks = [asyncio.create_task(service.run()) for service in services]
    while max(service.watermark for service in services) < head:
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    refused = _refused() - refused
    for service in services:
        service.stop()
    await asyncio.gather(*tasks)
    for client in clients:
        await client.close()
    for store in stores:
        store.close()
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    return elapsed, cpu, refused


async def run(pg: PostgresServer, nats_server: NatsServer, work: Path) -> list[str]:
    database = pg.fresh_database("bench_replicas")
    centres = TutoringCentres(load(EventStoreSettings, database.env()))
    populate(centres, SESSIONS, ROUNDS)
    head = centres.position
    await stream_afresh(centres, nats_server.url, work / "replicas-relay.lock")
    centres.close()

    rows = []
    for run_number, replicas in enumerate((1, 2, 1, 2)):
        read_db = pg.fresh_database(f"bench_replicas_read_{run_number}")
        elapsed, cpu, refused = await drain(
            nats_server.url, read_db, replicas, head, f"bench-replicas-{run_number}"
        )
        rows.append((replicas, head / elapsed, cpu / head, refused / head))
    one = [rate for replicas, rate, _, _ in rows if replicas == 1]
    out = [
        "",
        "## Projection replicas sharing a backlog",
        "",
        f"{head:,} events: {SESSIONS} live sessions x 5 students, {ROUNDS} rounds of attendance "
        "marking every session in turn, drained from JetStream into a fresh PostgreSQL read "
        "store; both replicas in this process (see tests/bench/replicas.py). Two runs of each, "
        "taking turns.",
        "",
        "| replicas | events per second | vs. one replica (mean) | CPU per event | "
        "refused as out of order, per event |",
        "|---:|---:|---:|---:|---:|",
    ]
    baseline = sum(one) / len(one)
    for replicas, rate, cpu, refused in rows:
        out.append(
            f"| {replicas} | {rate:,.0f} | {rate / baseline:.2f}x | {cpu * 1e6:,.0f} µs "
            f"| {refused:.3f} |"
        )
    return out


def main() -> None:
    """``python -m tests.bench.replicas``: this part of ``make bench`` alone."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with running_postgres() as pg, running_nats(work / "nats") as nats_server:
            print("\n".join(asyncio.run(run(pg, nats_server, work))))


if __name__ == "__main__":
    main()
