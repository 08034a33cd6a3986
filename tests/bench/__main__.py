"""``make bench``: throughput of the write side on PostgreSQL, each beside a raw baseline.

Writes ``var/bench/report.md`` (and prints it). Everything runs on 127.0.0.1 against servers
this script starts and stops; every loop is bounded in count and time.

1. Appends: raw eventsourcing ``save()`` in-process (baseline) vs. commands in-process vs.
   commands through the HTTP API (uvicorn, the command service as deployed).
2. Relay: events/s from the notification log to JetStream vs. raw nats-py ``publish_async``.
3. Relay lag: while the HTTP load runs, the time from a command's 2xx response to its last
   event arriving on a NATS subscription.

Then the read side (``tests/bench/read_side.py``), projection replicas sharing a backlog
(``tests/bench/replicas.py``), command -> delta on a websocket
(``tests/bench/live.py``), the timers (``tests/bench/timers.py``),
reading sheet codes from photos of paper work (``tests/bench/bench_paper_decode.py``) and
scans handed in and routed through the command service (``tests/bench/paper.py``), the
live gateway's fan-out beside a raw websockets broadcast (``tests/bench/fanout.py``), and what
sealing personal data costs an event, a command, a projected event and an answer, beside the
same without it (``tests/bench/privacy.py``).
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import httpx
import nats
import psycopg

from services.cluster_ha import free_ports
from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterPerson
from services.command.domain.session import Session
from services.command.privacy import PersonalData
from shared.events import SessionMode
from shared.eventstore import EventStoreSettings
from shared.observability.logging import configure_logging
from shared.observability.settings import LogSettings
from shared.privacy import PrivacySettings, new_master_key
from shared.settings import load as load_settings
from shared.tenancy import Role
from tests.builders import Centre, register_centre
from tests.support.servers import free_port, running_nats, running_postgres

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "var" / "bench" / "report.md"
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "150"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
"""uvicorn workers of the command service (the service's own default). One process keeps every
aggregate it writes, so its commands decide on kept copies without asking the store; with two,
a third of those copies were stale and the service spent 4.2-4.5 ms of CPU per command against
2.6-3.1 ms with one, at no more commands per second, on this 2-core machine."""
COMMANDS_ONLY = os.environ.get("BENCH_COMMANDS_ONLY", "") not in ("", "0")
"""Only the command rows (raw append, in-process commands, HTTP floor, HTTP commands), written
to ``var/bench/commands.md``: what to run while working on the command path."""


@dataclass
class Line:
    name: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def raw_appends(centres: TutoringCentres, centre: Centre, n: int) -> Line:
    tutor = centre["tutor"]
    starts = datetime.now(UTC)
    started = time.perf_counter()
    for _ in range(n):
        session = Session.schedule(
            uuid4(),
            by=tutor,
            tutor_id=tutor.user_id,
            title="bench",
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            time_zone="UTC",
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/b",
        )
        centres.save(session)
    return Line(
        "raw eventsourcing save(), 1 event each, in-process", n, time.perf_counter() - started
    )


def add_tutors(centres: TutoringCentres, centre: Centre, count: int) -> list[str]:
    """Tutors of their own: one tutor does not teach several sessions at the same time."""
    return add_people(centres, centre, Role.TEACHER, "bench-tutor", count)


def add_people(
    centres: TutoringCentres, centre: Centre, role: Role, prefix: str, count: int
) -> list[str]:
    from shared.tenancy import Actor
    from shared.tenancy.identity import person_id

    handles = []
    for i in range(count):
        handle, email = f"{prefix}-{i}", f"{prefix}-{i}@{centre.centre_id}.example"
        centres.handle(centre["root"], RegisterPerson(name=handle, email=email, role=role))
        centre.people[handle] = Actor(
            user_id=person_id(centre.centre_id, email), role=role, centre_id=centre.centre_id
        )
        handles.append(handle)
    return handles


def in_process_commands(
    centres: TutoringCentres, centre: Centre, tutors: list[str], n: int
) -> Line:
    from services.command.commands.sessions import ScheduleSession

    starts = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(n):
        begins = starts + timedelta(
            hours=2 * (i // len(tutors))
        )  # each tutor's sessions one after another
        centres.handle(
            centre[tutors[i % len(tutors)]],
            ScheduleSession(
                title="bench",
                starts_at=begins,
                ends_at=begins + timedelta(hours=1),
                mode=SessionMode.ONLINE,
                meeting_link="https://meet.example.org/b",
            ),
        )
    return Line(
        "schedule_session command, in-process (loads centre + tutor + timetable week, saves 2)",
        n,
        time.perf_counter() - started,
    )


def cold_loads(centres: TutoringCentres, centre: Centre, loads: int = 200) -> str:
    """Loading a session with 10 events and one with 10,000 in a process that kept neither
    (a replica that just started): from the latest snapshot, and reading the whole history."""
    from services.command.application import domain_fingerprint
    from services.command.unit_of_work import load
    from shared.eventstore.cache import AggregateCache, Snapshots
    from tests.builders import plan, session_id

    sizes = {}
    for size in (10, 10_000):
        session = session_id(centres.handle(centre["tutor"], plan()).body)
        aggregate = load(centres, Session, session)
        while aggregate.version + 2 <= size:
            for _ in range(min(250, (size - aggregate.version) // 2)):
                aggregate.enrol(centre["ann"].user_id, by=centre["tutor"])
                aggregate.remove(centre["ann"].user_id, by=centre["tutor"])
            centres.commit(aggregate)
        load(centres, Session, session)  # brought up to date here: its snapshot is written
        sizes[size] = session
    timings: dict[tuple[int, bool], float] = {}
    snapshots = Snapshots(centres.snapshot_recorder(), domain_fingerprint())
    for with_snapshots in (True, False):
        for size, session in sizes.items():
            n = loads if with_snapshots or size == 10 else max(1, loads // 10)
            started = time.perf_counter()
            for _ in range(n):
                cold = AggregateCache(
                    centres.events, snapshots=snapshots if with_snapshots else None
                )
                cold.get(session, Session.project)
            timings[size, with_snapshots] = (time.perf_counter() - started) / n * 1000
    return (
        "Cold load of a session (nothing kept in the process), PostgreSQL: 10 events "
        f"{timings[10, True]:.2f} ms, 10,000 events {timings[10_000, True]:.2f} ms "
        f"({timings[10_000, True] / timings[10, True]:.1f}x) from the latest snapshot; "
        f"reading the whole history {timings[10, False]:.2f} ms and "
        f"{timings[10_000, False]:.2f} ms ({timings[10_000, False] / timings[10, False]:.0f}x)."
    )


async def http_load(
    base: str,
    centre: Centre,
    tutors: list[str],
    pupils: list[str],
    sessions: int,
    on_response: Any,
) -> Line:
    """Each simulated session: schedule, enrol 5, start, 5 help requests, bulk attendance, end.
    Each concurrent stream of sessions has its own tutor and its own 5 students, whose sessions
    follow one another (a student is in one session at a time: the attendance of students in
    several sessions at once would conflict on their attendance records, as it should)."""
    streams = CONCURRENCY // 4 or 1
    commands = 0
    signed_in: dict[str, dict[str, str]] = {}

    def auth(handle: str) -> dict[str, str]:
        """The person's token, minted once as a client signs in once: a fresh token on each
        request made the command service verify a JWT for each help request (a sixth of its
        CPU in a profile), where its verifier remembers a token it has seen."""
        if handle not in signed_in:
            signed_in[handle] = centre.auth(handle)
        return signed_in[handle]

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(sessions):
        queue.put_nowait(i)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as client:

        async def send(
            method: str, url: str, headers: dict[str, str], body: Any = None
        ) -> dict[str, Any]:
            nonlocal commands
            async with client.request(method, url, json=body, headers=headers) as response:
                if response.status >= 300:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
                payload: dict[str, Any] = await response.json(content_type=None)
            commands += 1
            on_response(payload["position"], time.perf_counter())
            return payload

        async def one_session(tutor: dict[str, str], students: list[str], starts: datetime) -> None:
            scheduled = await send(
                "POST",
                "/api/v1/sessions",
                tutor,
                {
                    "title": "bench",
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=1)).isoformat(),
                    "mode": "ONLINE",
                    "meetingLink": "https://meet.example.org/b",
                },
            )
            sid = scheduled["sessionId"]
            for s in students:
                await send(
                    "POST",
                    f"/api/v1/sessions/{sid}/enrolments",
                    tutor,
                    {"studentId": str(centre[s].user_id), "courseId": "maths"},
                )
            await send("POST", f"/api/v1/sessions/{sid}/start", tutor)
            await asyncio.gather(
                *[
                    send(
                        "POST",
                        f"/api/v1/sessions/{sid}/help-requests",
                        auth(s),
                        {"priority": "HIGH"},
                    )
                    for s in students
                ]
            )
            await send(
                "POST",
                "/api/academic/attendance/bulk",
                tutor,
                {
                    "sessionId": sid,
                    "records": [
                        {
                            "studentId": str(centre[s].user_id),
                            "status": "ABSENT" if s == "eve" else "PRESENT",
                        }
                        for s in students
                    ],
                },
            )
            await send("POST", f"/api/v1/sessions/{sid}/end", tutor)

        async def worker(i: int) -> None:
            starts = datetime.now(UTC) + timedelta(days=1)
            while not queue.empty():
                queue.get_nowait()
                await one_session(auth(tutors[i]), pupils[5 * i : 5 * i + 5], starts)
                starts += timedelta(hours=2)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[worker(i) for i in range(streams)]), timeout=600)
        return Line(
            f"HTTP commands (uvicorn x{WORKERS}, {streams} concurrent sessions)",
            commands,
            time.perf_counter() - started,
        )


async def http_floor(base: str, requests: int) -> Line:
    """The same load generator against GET /health: what HTTP alone costs on this machine."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base, connector=connector) as client:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one() -> None:
            async with sem, client.get("/health") as response:
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[one() for _ in range(requests)]), timeout=120)
        return Line(
            "HTTP floor: GET /health, same client and server",
            requests,
            time.perf_counter() - started,
        )


MEASURED: set[int] = {os.getpid()}
"""The processes whose CPU is counted, with their descendants: this one (and the services and
nats-server it starts) and the bench's own PostgreSQL server, not other work on the machine."""


def cpu_by_process() -> dict[str, float]:
    """CPU seconds used so far, per kind of process among :data:`MEASURED` and descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    stats: dict[int, tuple[int, list[str], Path]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), fields, stat.parent)

    def measured(pid: int) -> bool:
        for _ in range(64):
            if pid in MEASURED:
                return True
            if pid not in stats or pid <= 1:
                return False
            pid = stats[pid][0]
        return False

    for pid, (_, fields, folder) in stats.items():
        if not measured(pid):
            continue
        try:
            cmdline = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmdline:  # uvicorn worker processes of the command service
            cmdline = "services.command"
        kind = next(
            (
                k
                for k in (
                    "services.command",
                    "services.relay",
                    "nats-server",
                    "postgres",
                    "tests.bench",
                )
                if k in cmdline
            ),
            None,
        )
        if kind is not None:
            totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def with_cpu(run: Callable[[], Line]) -> Line:
    """``run()``'s line, noting the CPU it cost per item in each kind of process."""
    before = cpu_by_process()
    line = run()
    after = cpu_by_process()
    line.note = "ms CPU per item by process: " + ", ".join(
        f"{kind} {(after[kind] - before.get(kind, 0.0)) / line.count * 1000:.2f}"
        for kind in sorted(after)
        if after[kind] > before.get(kind, 0.0)
    )
    return line


def cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


async def raw_publish(url: str, payloads: list[bytes]) -> Line:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=5000)
    await js.add_stream(name="BENCH_RAW", subjects=["bench.raw.>"], duplicate_window=120)
    started = time.perf_counter()
    for start in range(0, len(payloads), 500):
        acks = [
            await js.publish_async("bench.raw.x", p, headers={"Nats-Msg-Id": f"r:{start + i}"})
            for i, p in enumerate(payloads[start : start + 500])
        ]
        await asyncio.gather(*acks)
    line = Line(
        "raw nats-py publish_async, batches of 500 with Nats-Msg-Id",
        len(payloads),
        time.perf_counter() - started,
    )
    await js.delete_stream("BENCH_RAW")
    await nc.close()
    return line


def start_service(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


async def main() -> None:
    # The services refuse to start without a token secret (this one signs the bench's tokens
    # too), and the load must measure the services, not their per-caller rate limits.
    os.environ.setdefault("TUTORPULSE_JWT_SECRET", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_PAPER_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_PRIVACY_MASTER_KEYS", f"bench={new_master_key()}")
    os.environ.setdefault("TUTORPULSE_RATE_LIMIT", "1000000/second")
    os.environ.setdefault("TUTORPULSE_HELP_RATE_LIMIT", "1000000/second")
    # What runs in this process (commands, the projection service, rebuilds) logs as the
    # bench's services do; structlog's default renders every line for a terminal, which cost
    # the projection service about 4 % of its CPU per event in this bench.
    configure_logging("bench", LogSettings(level="warning"))
    work = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    lines: list[Line] = []
    lag_ms: list[float] = []
    with running_postgres() as pg, running_nats(work / "nats") as nats_server:
        bench_db = pg.fresh_database("bench")
        if pg.control is not None:
            postmaster = pg.control.data / "postmaster.pid"
            MEASURED.add(int(postmaster.read_text().split()[0]))
        env = {
            **os.environ,
            **bench_db.env(),
            "TUTORPULSE_NATS_URL": nats_server.url,
            "TUTORPULSE_LOG_LEVEL": "WARNING",
            "TUTORPULSE_POSTGRES_POOL_SIZE": "10",
            "TUTORPULSE_BLOB_DIR": str(work / "blobs"),
            "TUTORPULSE_BLOB_URL_KEY": secrets.token_urlsafe(48),
        }
        store_env = {k: v for k, v in env.items() if k.startswith("TUTORPULSE_")}
        store_settings = load_settings(EventStoreSettings, store_env)
        centres = TutoringCentres(store_settings)
        # In process as in the command service: personal texts sealed as events are made.
        centres.protect(
            PersonalData.open(
                store_settings, load_settings(PrivacySettings, store_env), dev_mode=False
            )
        )
        centre = register_centre(centres, "bench")
        lines.append(with_cpu(lambda: raw_appends(centres, centre, 1500)))
        tutors = add_tutors(centres, centre, max(8, CONCURRENCY // 4))
        pupils = add_people(centres, centre, Role.STUDENT, "bench-student", 5 * len(tutors))
        lines.append(with_cpu(lambda: in_process_commands(centres, centre, tutors, 1500)))
        cold = cold_loads(centres, centre)

        command_port, relay_port = free_ports(2)
        env |= {
            "TUTORPULSE_COMMAND_PORT": str(command_port),
            "TUTORPULSE_RELAY_PORT": str(relay_port),
            "TUTORPULSE_COMMAND_WORKERS": str(WORKERS),
        }
        relay = start_service("services.relay", env, work / "relay.log")
        command = start_service("services.command", env, work / "command.log")
        try:
            await wait_http(f"http://127.0.0.1:{relay_port}/ready")
            await wait_http(f"http://127.0.0.1:{command_port}/ready")
            accepted: dict[int, float] = {}
            arrived: dict[int, float] = {}
            nc = await nats.connect(nats_server.url)

            async def on_event(msg: Any) -> None:
                arrived[int(msg.headers["Tp-Notification-Id"])] = time.perf_counter()

            await nc.subscribe("tp.evt.>", cb=on_event)
            base = f"http://127.0.0.1:{command_port}"
            lines.append(await http_floor(base, 3000))
            busy, per_process = cpu_seconds(), cpu_by_process()
            load = await http_load(
                base, centre, tutors, pupils, SESSIONS, lambda pos, t: accepted.setdefault(pos, t)
            )
            busy = cpu_seconds() - busy
            after = cpu_by_process()
            split = ", ".join(
                f"{kind} {(after[kind] - per_process.get(kind, 0.0)) / load.count * 1000:.2f}"
                for kind in sorted(after)
            )
            load.note = (
                f"machine CPU busy {busy / load.seconds / (os.cpu_count() or 1):.0%}; "
                f"{busy / load.count * 1000:.1f} ms CPU per command (ms per command by "
                f"process: {split})"
            )
            lines.append(load)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(accepted) <= set(arrived):
                await asyncio.sleep(0.05)
            lag_ms = [max(0.0, arrived[p] - t) * 1000 for p, t in accepted.items() if p in arrived]
            await nc.close()
        finally:
            for process in (command, relay):
                process.terminate()
                process.wait(timeout=15)

        if COMMANDS_ONLY:
            centres.close()
            write_report(lines, lag_ms, ["", cold], REPORT.with_name("commands.md"))
            return
        notifications = centres.recorder.select_notifications(1, 10_000_000)
        payloads = [n.state for n in notifications]
        # Relay throughput over the whole backlog: forget the stream and the relay's position.
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().delete_stream("TP_EVENTS")
        await nc.close()
        with psycopg.connect(bench_db.dsn(), autocommit=True) as conn:
            conn.execute("DELETE FROM tutorpulse_tracking")
        lines.append(await relay_backlog(env, work, nats_server.url, len(notifications)))
        lines.append(await raw_publish(nats_server.url, payloads))
        centres.close()
        from tests.bench import read_side

        read = ["", cold, *await read_side.run(pg, nats_server, work)]
        from tests.bench import replicas

        read += await replicas.run(pg, nats_server, work)
        from tests.bench import live

        read += await live.run(pg, nats_server, work, start_service, wait_http)
        from tests.bench import timers

        read += await timers.run(nats_server, work)
        from tests.bench import bench_paper_decode

        read += bench_paper_decode.run()
        from tests.bench import paper

        read += await paper.run(pg, work, start_service, wait_http)
        from tests.bench import fanout

        read += await fanout.run(nats_server, work)
        from tests.bench import privacy

        read += privacy.run()
        read += privacy.paths(load_settings(EventStoreSettings, store_env))
    write_report(lines, lag_ms, read)


async def relay_backlog(env: dict[str, str], work: Path, url: str, expected: int) -> Line:
    env = env | {"TUTORPULSE_RELAY_PORT": str(free_port())}
    started = time.perf_counter()
    relay = start_service("services.relay", env, work / "relay-backlog.log")
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if (await js.stream_info("TP_EVENTS")).state.messages >= expected:
                    break
            except Exception:  # stream not created yet
                pass
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        relay.terminate()
        relay.wait(timeout=15)
        await nc.close()
    return Line(
        "relay: notification log -> JetStream (PostgreSQL, batches of 500, incl. start-up)",
        expected,
        elapsed,
    )


def write_report(
    lines: list[Line], lag_ms: list[float], read_side: list[str], report: Path = REPORT
) -> None:
    raw_append = lines[0]
    raw_pub = lines[-1]
    out = [
        "# tutorpulse benchmark",
        "",
        "## Write side",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; PostgreSQL (fsync off) and nats-server on 127.0.0.1. "
        "Load generator, servers and services share the same cores.",
        "",
        "| what | count | seconds | per second | vs. baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for line in lines:
        base = raw_pub if "relay" in line.name or "nats-py" in line.name else raw_append
        if line.name.startswith("HTTP commands"):
            base = next(x for x in lines if x.name.startswith("HTTP floor"))
        ratio = (
            f"{line.rate / base.rate:.2f}x of {base.name.split(':')[0].split(',')[0]}"
            if line is not base
            else "baseline"
        )
        out.append(
            f"| {line.name} | {line.count} | {line.seconds:.2f} | {line.rate:,.0f} | {ratio} |"
        )
    out += [""] + [f"- {line.name}: {line.note}" for line in lines if line.note]
    if lag_ms:
        q = statistics.quantiles(lag_ms, n=100, method="inclusive")
        out += [
            "",
            "Relay lag during the HTTP load (command 2xx -> event on a NATS subscription), "
            f"{len(lag_ms)} commands: p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms, "
            f"max {max(lag_ms):.1f} ms.",
        ]
    out += read_side
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    asyncio.run(main())
