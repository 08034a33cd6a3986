"""Read-side benchmark: projection throughput and rebuild speed (the command → websocket
latency is measured by :mod:`tests.bench.live` on the same populated centre).

Each figure stands beside a baseline measured in the same run: the raw rate at which nats-py
consumes the same stream (fetch 500, ack each). The raw consume and the projection service run
in this process, so each also gets its CPU per event (this process's, every thread; the
database server's is not counted): on a busy machine the rates swing, the CPU much less.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import statistics
import time
from pathlib import Path
from uuid import UUID

import nats
from nats.js import JetStreamContext

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterCentre, RegisterPerson
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import EnrolStudent, ScheduleSession, StartSession
from services.projections.rebuild import rebuild
from services.projections.service import ProjectionService, collect_garbage_less
from services.relay.lease import FileLease
from services.relay.relay import Relay
from shared.events import STREAM_NAME, AttendanceStatus, SessionMode
from shared.eventstore import EventStoreSettings
from shared.messaging import ensure_streams
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor, Role
from tests.support.servers import NatsServer, PostgresServer

SESSIONS = int(os.environ.get("BENCH_LIVE_SESSIONS", "200"))
STUDENTS = 5
MARK_ROUNDS = int(os.environ.get("BENCH_MARK_ROUNDS", "4"))


def populate(
    centres: TutoringCentres, sessions_count: int = SESSIONS, mark_rounds: int = MARK_ROUNDS
) -> tuple[Actor, list[tuple[UUID, list[UUID]]]]:
    """A centre with ``sessions_count`` live sessions of 5 students each, and ``mark_rounds``
    rounds of attendance, each round marking every session in turn."""
    from datetime import UTC, datetime, timedelta

    from tests.builders import ROOT

    root = ROOT.acting_in("bench-live")
    centres.handle(root, RegisterCentre(centre_id="bench-live", name="Bench", time_zone="UTC"))
    supervisor_id = UUID(
        centres.handle(
            root, RegisterPerson(name="Sue", email="sue@b.example", role=Role.CENTER_SUPERVISOR)
        ).body["personId"]
    )
    supervisor = Actor(user_id=supervisor_id, role=Role.CENTER_SUPERVISOR, centre_id="bench-live")
    sessions = []
    starts = datetime.now(UTC).replace(microsecond=0)
    for s in range(sessions_count):
        tutor = UUID(
            centres.handle(
                root, RegisterPerson(name=f"T{s}", email=f"t{s}@b.example", role=Role.TEACHER)
            ).body["personId"]
        )
        session = UUID(
            centres.handle(
                supervisor,
                ScheduleSession(
                    title=f"Session {s}",
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=1),
                    mode=SessionMode.ONLINE,
                    meeting_link="https://meet.example.org/b",
                    tutor_id=tutor,
                ),
            ).body["sessionId"]
        )
        students = []
        for n in range(STUDENTS):
            student = UUID(
                centres.handle(
                    root,
                    RegisterPerson(
                        name=f"S{s}-{n}", email=f"s{s}-{n}@b.example", role=Role.STUDENT
                    ),
                ).body["personId"]
            )
            centres.handle(
                supervisor,
                EnrolStudent(
                    session_id=session, student_id=student, course_id="maths", lesson_id=f"l{n}"
                ),
            )
            students.append(student)
        centres.handle(supervisor, StartSession(session_id=session))
        sessions.append((session, students))
    for round_ in range(mark_rounds):
        status = AttendanceStatus.LATE if round_ % 2 else AttendanceStatus.PRESENT
        for session, students in sessions:
            centres.handle(
                supervisor,
                MarkAttendance(
                    session_id=session,
                    records=[AttendanceRecord(student_id=s, status=status) for s in students],
                ),
            )
    return supervisor, sessions


def cpu_seconds() -> float:
    """CPU time of this process so far (user and system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def streams_afresh(js: JetStreamContext) -> None:
    """The streams, with TP_EVENTS empty: another benchmark of the run relayed another store's
    notification ids, whose message ids this store's events would repeat inside the duplicate
    window, and JetStream would drop them."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM_NAME)
    await ensure_streams(js)


async def stream_afresh(centres: TutoringCentres, url: str, lease: Path) -> None:
    """Everything ``centres`` stored, relayed into a TP_EVENTS emptied first."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await streams_afresh(js)
    relay = Relay(centres, centres.tracking(), js, FileLease(lease))
    relaying = asyncio.create_task(relay.run())
    head = centres.position
    while relay.position < head:
        await asyncio.sleep(0.05)
    relay.stop()
    await relaying
    await nc.close()


async def raw_consume(url: str, expected: int) -> tuple[float, float]:
    """Events per second, and seconds of CPU per event."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    subscription = await js.pull_subscribe("tp.evt.>", durable="bench-raw", stream="TP_EVENTS")
    started, cpu, seen = time.perf_counter(), cpu_seconds(), 0
    while seen < expected:
        for message in await subscription.fetch(500, timeout=5):
            await message.ack()
            seen += 1
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    await nc.close()
    return expected / elapsed, cpu / expected


async def project_all(
    url: str, folder: Path, expected_position: int, durable: str, env: dict[str, str]
) -> tuple[float, float]:
    """Seconds until the watermark reached ``expected_position``, and seconds of CPU."""
    store = open_read_store(load(ReadStoreSettings, env))
    nc = await nats.connect(url)
    service = ProjectionService(store, nc, durable=durable)
    thresholds = collect_garbage_less()  # as the service's process does (its __main__)
    started, cpu = time.perf_counter(), cpu_seconds()
    task = asyncio.create_task(service.run())
    while service.watermark < expected_position:
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    service.stop()
    await task
    await nc.close()
    store.close()
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    return elapsed, cpu


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms, max {max(values):.1f} ms"


async def run(pg: PostgresServer, nats_server: NatsServer, work: Path) -> list[str]:
    database = pg.fresh_database("bench_read")
    env = {
        **os.environ,
        **database.env(),
        "TUTORPULSE_NATS_URL": nats_server.url,
        "TUTORPULSE_LOG_LEVEL": "WARNING",
        "TUTORPULSE_READ_STORE": "postgres",
    }
    centres = TutoringCentres(load(EventStoreSettings, database.env()))
    started = time.perf_counter()
    populate(centres)
    populate_seconds = time.perf_counter() - started
    head = centres.position

    await stream_afresh(centres, nats_server.url, work / "read-relay.lock")

    raw, raw_cpu = await raw_consume(nats_server.url, head)
    sqlite_env = {
        "TUTORPULSE_READ_STORE": "sqlite",
        "TUTORPULSE_READ_SQLITE_PATH": str(work / "rm.sqlite"),
    }
    projected_sqlite, sqlite_cpu = await project_all(
        nats_server.url, work, head, "bench-sqlite", sqlite_env
    )
    projected_pg, pg_cpu = await project_all(
        nats_server.url,
        work,
        head,
        "projections",
        {k: v for k, v in env.items() if k.startswith("TUTORPULSE_")},
    )
    read_pg = open_read_store(
        load(ReadStoreSettings, {k: v for k, v in env.items() if k.startswith("TUTORPULSE_")})
    )
    rebuilt_pg = rebuild(centres, read_pg, settle_timeout=0)
    read_pg.close()
    read_sqlite = open_read_store(load(ReadStoreSettings, sqlite_env))
    rebuilt_sqlite = rebuild(centres, read_sqlite, settle_timeout=0)
    read_sqlite.close()

    centres.close()

    rows = [
        ("raw nats-py pull consume (fetch 500, ack each)", raw, "baseline", raw_cpu),
        ("projection service, SQLite read store", head / projected_sqlite, None, sqlite_cpu / head),
        ("projection service, PostgreSQL read store", head / projected_pg, None, pg_cpu / head),
        ("rebuild from the event store, SQLite read store", rebuilt_sqlite.rate, None, None),
        ("rebuild from the event store, PostgreSQL read store", rebuilt_pg.rate, None, None),
    ]
    out = [
        "",
        "## Read side",
        "",
        f"{head:,} events in the store ({SESSIONS} live sessions x {STUDENTS} students, "
        f"{MARK_ROUNDS} rounds of attendance; populated in {populate_seconds:.1f} s).",
        "",
        "| what | events per second | vs. raw consume | CPU per event (this process) |",
        "|---|---:|---:|---:|",
    ]
    for name, rate, note, cpu in rows:
        per_event = f"{cpu * 1e6:,.0f} µs" if cpu is not None else ""
        out.append(f"| {name} | {rate:,.0f} | {note or f'{rate / raw:.2f}x'} | {per_event} |")
    return out
