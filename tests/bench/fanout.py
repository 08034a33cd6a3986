"""Fan-out: many websocket clients following many live sessions, through the live gateway and
through a raw ``websockets`` broadcast server, measured by the same client in the same run.

Each session is followed by its tutor, its students and one parent (a guardian of its first
student): views of their own, so every notice costs the gateway one view per follower, computed
from one read of the session. A driver changes sessions at a steady rate straight in the read
store (the session is extended or shortened by a minute, which every follower sees: its end and
its timing), then publishes the change notice on core NATS as the projection service does; the
gateway reads and sends each follower their delta. The raw server subscribes to the same notices
and ``websockets.broadcast``-s one frame to the followers of the session: what a broadcast costs
on this machine with no read, no view and no access rule. The client, in this process, records
for each follower the time from the notice's publish to the first message carrying that version
or a later one (the gateway reads the document when it gets to it, so it may skip a version: the
client's copy is current all the same); a (follower, version) pair never covered within 10 s of
the end is lost.

Then the connections one gateway process holds: ``BENCH_FANOUT_HOLD`` idle clients, each
following a session (supervisors, who share the view), the process's memory, and one change of
every session delivered to all of them.

``python -m tests.bench.fanout`` runs it alone (its own nats-server; SQLite stores in a
temporary folder); ``make bench`` runs it after the others. ``BENCH_FANOUT_GATEWAY_SOURCE``:
run the gateway from another checkout of the project (to measure an older gateway in the same
conditions); ``BENCH_FANOUT_PROFILE``: a file for the gateway's ``cProfile`` statistics.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import nats
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection, broadcast, serve

from services.cluster_ha import free_ports
from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterCentre, RegisterPerson
from services.command.commands.sessions import EnrolStudent, ScheduleSession, StartSession
from services.projections.rebuild import rebuild
from shared.events import SessionMode
from shared.eventstore import EventStoreSettings
from shared.privacy import new_master_key
from shared.readmodels.deltas import decode_notice, delta_subject
from shared.readmodels.documents import SESSION
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.tokens import mint
from tests.support.servers import NatsServer, running_nats

ROOT = Path(__file__).resolve().parents[2]
CENTRE = "bench-fanout"
SESSIONS = int(os.environ.get("BENCH_FANOUT_SESSIONS", "200"))
STUDENTS = int(os.environ.get("BENCH_FANOUT_STUDENTS", "3"))
"""Students per session; its followers are its tutor, its students and one parent."""
CHANGES = float(os.environ.get("BENCH_FANOUT_CHANGES_PER_SECOND", "2"))
"""Changes per session per second."""
SECONDS = float(os.environ.get("BENCH_FANOUT_SECONDS", "15"))
HOLD = int(os.environ.get("BENCH_FANOUT_HOLD", "2000"))
HOLD_CHANGES = float(os.environ.get("BENCH_FANOUT_HOLD_CHANGES_PER_SECOND", "0.2"))
"""Changes per session per second while the HOLD connections are held."""
GATEWAY_SOURCE = os.environ.get("BENCH_FANOUT_GATEWAY_SOURCE")
PROFILE = os.environ.get("BENCH_FANOUT_PROFILE")
"""A file to write the gateway's cProfile statistics to."""
TICK = 0.02
"""The driver writes the changes due in one transaction every TICK seconds."""
LATE = 10.0
"""Seconds after the load ends that a delivery still counts."""


@dataclass(frozen=True)
class Follower:
    actor: Actor
    topic: str


@dataclass
class Population:
    supervisor: Actor
    sessions: list[UUID]
    followers: list[Follower]
    versions: dict[str, int] = field(default_factory=dict)


def populate(folder: Path, read_store: ReadStore) -> Population:
    """SESSIONS live sessions through the commands on a SQLite event store, rebuilt into the
    read store."""
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "fanout-events.sqlite")})
    )
    from tests.builders import ROOT as SYSTEM

    root = SYSTEM.acting_in(CENTRE)
    centres.handle(root, RegisterCentre(centre_id=CENTRE, name="Fan-out", time_zone="UTC"))

    def person(name: str, role: Role, guardian: UUID | None = None) -> Actor:
        body = centres.handle(
            root,
            RegisterPerson(
                name=name, email=f"{name.lower()}@fanout.example", role=role, guardian_id=guardian
            ),
        ).body
        return Actor(user_id=UUID(body["personId"]), role=role, centre_id=CENTRE)

    supervisor = person("Sue", Role.CENTER_SUPERVISOR)
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    sessions: list[UUID] = []
    followers: list[Follower] = []
    for s in range(SESSIONS):
        tutor = person(f"T{s}", Role.TEACHER)
        parent = person(f"P{s}", Role.PARENT)
        session = UUID(
            centres.handle(
                supervisor,
                ScheduleSession(
                    title=f"Session {s}",
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=2),
                    mode=SessionMode.ONLINE,
                    meeting_link="https://meet.example.org/f",
                    tutor_id=tutor.user_id,
                ),
            ).body["sessionId"]
        )
        topic = f"session:{session}"
        students = [
            person(f"S{s}-{n}", Role.STUDENT, parent.user_id if n == 0 else None)
            for n in range(STUDENTS)
        ]
        for n, student in enumerate(students):
            centres.handle(
                supervisor,
                EnrolStudent(
                    session_id=session,
                    student_id=student.user_id,
                    course_id="maths",
                    lesson_id=f"l{n}",
                ),
            )
        centres.handle(supervisor, StartSession(session_id=session))
        sessions.append(session)
        followers += [Follower(who, topic) for who in (tutor, *students, parent)]
    rebuild(centres, read_store, settle_timeout=0)
    centres.close()
    return Population(supervisor, sessions, followers, current_versions(read_store, sessions))


def current_versions(store: ReadStore, sessions: list[UUID]) -> dict[str, int]:
    found = store.get_many(SESSION, [str(s) for s in sessions])
    return {f"session:{key}": stored.version for key, stored in found.items()}


# --- the raw broadcast server ----------------------------------------------------------------


async def serve_raw(port: int, url: str) -> None:
    """Followers by topic; each notice broadcast as one frame to the followers of its session."""
    topics: dict[str, set[ServerConnection]] = {}

    async def handler(socket: ServerConnection) -> None:
        followed: list[str] = []
        try:
            async for raw in socket:
                message = json.loads(raw)
                if message.get("type") == "subscribe":
                    topics.setdefault(message["topic"], set()).add(socket)
                    followed.append(message["topic"])
                    await socket.send(
                        json.dumps({"type": "subscribed", "topic": message["topic"], "version": 0})
                    )
                elif message.get("type") == "ping":
                    await socket.send('{"type":"pong"}')
        finally:
            for topic in followed:
                topics.get(topic, set()).discard(socket)

    async def on_notice(message: Any) -> None:
        notice = decode_notice(message.data)
        topic = f"session:{notice.key}"
        frame = json.dumps(
            {
                "type": "delta",
                "topic": topic,
                "version": notice.version,
                "patch": {"version": notice.version},
            }
        )
        broadcast(topics.get(topic, set()), frame)

    nc = await nats.connect(url)
    await nc.subscribe(f"tp.delta.{CENTRE}.>", cb=on_notice)
    async with serve(handler, "127.0.0.1", port, ping_interval=None, max_queue=None):
        await asyncio.Future()


# --- the client --------------------------------------------------------------------------


@dataclass
class Tally:
    """What the followers received: latencies (ms) of (follower, version) pairs covered."""

    published: dict[tuple[str, int], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    expected: int = 0
    errors: int = 0
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return len(self.latencies)


async def connect(url: str, follower: Follower, version: int, tally: Tally) -> ClientConnection:
    """A follower's socket, subscribed and past its snapshot, and its reader."""
    socket = await websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {mint(follower.actor)}"},
        ping_interval=None,
        max_queue=None,
        open_timeout=60,
        compression=None,
    )
    await socket.send(json.dumps({"type": "subscribe", "topic": follower.topic}))
    while True:
        first = json.loads(await socket.recv())
        if first["type"] in ("snapshot", "subscribed"):
            break
        if first["type"] == "error":
            raise RuntimeError(f"subscription refused: {first}")
    last = max(version, first["version"])

    async def read() -> None:
        nonlocal last
        async for raw in socket:
            arrived = time.perf_counter()
            message = json.loads(raw)
            kind = message["type"]
            if kind == "ping":
                await socket.send('{"type":"pong"}')
            elif kind in ("delta", "snapshot") and message["version"] > last:
                for covered in range(last + 1, message["version"] + 1):
                    sent = tally.published.get((follower.topic, covered))
                    if sent is not None:
                        tally.latencies.append((arrived - sent) * 1000)
                last = message["version"]
            elif kind == "error":
                tally.errors += 1

    tally.readers.append(asyncio.create_task(read()))
    return socket


async def connect_all(
    url: str, followers: list[Follower], versions: dict[str, int], tally: Tally
) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    for start in range(0, len(followers), 100):
        sockets += await asyncio.gather(
            *(
                connect(url, f, versions.get(f.topic, 0), tally)
                for f in followers[start : start + 100]
            )
        )
    return sockets


async def close_all(sockets: list[ClientConnection], tally: Tally) -> None:
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    for reader in tally.readers:
        reader.cancel()
    await asyncio.gather(*tally.readers, return_exceptions=True)


# --- the driver ----------------------------------------------------------------------------


async def drive(
    store: ReadStore,
    nats_url: str,
    sessions: list[UUID],
    per_session: dict[str, int],
    changes: float,
    seconds: float,
    tally: Tally,
) -> int:
    """Change every session ``changes`` times a second for ``seconds``; return notices sent."""
    nc = await nats.connect(nats_url)
    rng = random.Random(12)
    period = 1 / changes
    due = {s: time.perf_counter() + rng.random() * period for s in sessions}
    ends = time.perf_counter() + seconds
    notices = 0
    sign = 1
    while (now := time.perf_counter()) < ends:
        ready = [s for s, at in due.items() if at <= now]
        if ready:
            found = store.get_many(SESSION, [str(s) for s in ready])
            changed = []
            for stored in found.values():
                ends_at = datetime.fromisoformat(stored.doc.ends_at) + sign * timedelta(minutes=1)
                sign = -sign
                changed.append(
                    replace(
                        stored,
                        version=stored.version + 1,
                        doc=msgspec.structs.replace(stored.doc, ends_at=ends_at.isoformat()),
                    )
                )
            with store.transaction() as tx:
                tx.put_many(changed)
            for stored in changed:
                topic = f"session:{stored.key}"
                payload = msgspec.json.encode(
                    {
                        "kind": SESSION.name,
                        "key": stored.key,
                        "centreId": CENTRE,
                        "version": stored.version,
                    }
                )
                tally.published[(topic, stored.version)] = time.perf_counter()
                tally.expected += per_session[topic]
                await nc.publish(delta_subject(CENTRE, SESSION.name, stored.key), payload)
                notices += 1
            await nc.flush()
            for s in ready:
                due[s] += period
        await asyncio.sleep(TICK)
    await nc.close()
    return notices


async def settle(tally: Tally) -> None:
    """Wait until everything expected arrived, or LATE seconds."""
    deadline = time.monotonic() + LATE
    while tally.delivered < tally.expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


# --- the processes -----------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, *argv], env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )


async def wait_ws(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with websockets.connect(url, open_timeout=2):
                return
        except (OSError, websockets.InvalidHandshake, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@dataclass
class Measured:
    name: str
    connections: int
    notices: int
    seconds: float
    tally: Tally
    cpu: float
    """CPU seconds of the server process during the load."""
    connect_seconds: float
    rss: float
    """Resident MiB of the server process holding the connections, before the load."""

    @property
    def lost(self) -> int:
        return self.tally.expected - self.tally.delivered

    def quantile(self, q: int) -> float:
        values = self.tally.latencies
        return (
            statistics.quantiles(values, n=100, method="inclusive")[q - 1]
            if len(values) > 1
            else float("nan")
        )


async def measure(
    name: str,
    url: str,
    pid: int,
    store: ReadStore,
    nats_url: str,
    population: Population,
    followers: list[Follower],
    changes: float,
    seconds: float,
) -> Measured:
    tally = Tally()
    versions = current_versions(store, population.sessions)
    connecting = time.perf_counter()
    sockets = await connect_all(url, followers, versions, tally)
    connect_seconds = time.perf_counter() - connecting
    rss = rss_mib(pid)
    per_session: dict[str, int] = {}
    for follower in followers:
        per_session[follower.topic] = per_session.get(follower.topic, 0) + 1
    cpu = cpu_of(pid)
    notices = await drive(
        store, nats_url, population.sessions, per_session, changes, seconds, tally
    )
    await settle(tally)
    cpu = cpu_of(pid) - cpu
    await close_all(sockets, tally)
    return Measured(name, len(sockets), notices, seconds, tally, cpu, connect_seconds, rss)


async def run(nats_server: NatsServer, work: Path) -> list[str]:
    os.environ.setdefault("TUTORPULSE_JWT_SECRET", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_PRIVACY_MASTER_KEYS", f"bench={new_master_key()}")
    read_path = work / "fanout-read.sqlite"
    read_env = {"TUTORPULSE_READ_STORE": "sqlite", "TUTORPULSE_READ_SQLITE_PATH": str(read_path)}
    store = open_read_store(load(ReadStoreSettings, read_env))
    started = time.perf_counter()
    population = populate(work, store)
    populated = time.perf_counter() - started

    raw_port, gateway_port = free_ports(2)
    raw = start(
        ["-m", "tests.bench.fanout", "serve-raw", str(raw_port), nats_server.url],
        dict(os.environ),
        work / "fanout-raw.log",
        ROOT,
    )
    source = Path(GATEWAY_SOURCE) if GATEWAY_SOURCE else ROOT
    profile = ["-m", "cProfile", "-o", PROFILE] if PROFILE else []
    gateway = start(
        [*profile, "-m", "services.live_gateway"],
        {
            **os.environ,
            **read_env,
            **nats_server.env_for("gateway"),
            # The key store's table, beside the events.
            "TUTORPULSE_SQLITE_PATH": str(work / "fanout-events.sqlite"),
            "PYTHONPATH": str(source),
            "TUTORPULSE_GATEWAY_PORT": str(gateway_port),
            "TUTORPULSE_LOG_LEVEL": "WARNING",
        },
        work / "fanout-gateway.log",
        source,
    )
    lines: list[Measured] = []
    held: dict[str, float] = {}
    try:
        raw_url, gateway_url = f"ws://127.0.0.1:{raw_port}/", f"ws://127.0.0.1:{gateway_port}/live"
        await wait_ws(raw_url)
        await wait_http_ok(f"http://127.0.0.1:{gateway_port}/ready")
        followers = population.followers
        for name, url, pid in (
            ("raw websockets broadcast (baseline)", raw_url, raw.pid),
            ("live gateway", gateway_url, gateway.pid),
        ):
            lines.append(
                await measure(
                    name, url, pid, store, nats_server.url, population, followers, CHANGES, SECONDS
                )
            )
        if HOLD:
            hold_followers = [
                Follower(population.supervisor, f"session:{population.sessions[i % SESSIONS]}")
                for i in range(HOLD)
            ]
            held["rss_before"] = rss_mib(gateway.pid)
            lines.append(
                await measure(
                    f"live gateway, {HOLD:,} supervisors (one shared view per session)",
                    gateway_url,
                    gateway.pid,
                    store,
                    nats_server.url,
                    population,
                    hold_followers,
                    HOLD_CHANGES,
                    SECONDS,
                )
            )
    finally:
        raw.terminate()
        # uvicorn raises the signal again once it has stopped: only SIGINT's KeyboardInterrupt
        # lets cProfile write its statistics.
        gateway.send_signal(signal.SIGINT if PROFILE else signal.SIGTERM)
        for process in (raw, gateway):
            process.wait(timeout=15)
        store.close()
    return report(lines, held, populated)


async def wait_http_ok(url: str, timeout: float = 30) -> None:
    import httpx

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


def report(lines: list[Measured], held: dict[str, float], populated: float) -> list[str]:
    viewers = STUDENTS + 2
    out = [
        "",
        "## Live fan-out",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared by nats-server, "
        "the server measured and this client. "
        f"{SESSIONS} live sessions, each followed by {viewers} websocket clients (its tutor, "
        f"{STUDENTS} students, a parent: {SESSIONS * viewers} clients, each a view of its own), "
        f"each session changed {CHANGES:g} times a second for {SECONDS:g} s "
        f"({SESSIONS * viewers * CHANGES:,.0f} deliveries/s offered); populated in "
        f"{populated:.1f} s.",
        "",
        "| server | clients | notices | deliveries expected | lost | p50 ms | p90 ms | p99 ms "
        "| server CPU per delivery | p99 vs. baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = lines[0]
    for line in lines:
        delivered = max(line.tally.delivered, 1)
        ratio = "baseline" if line is base else f"{line.quantile(99) / base.quantile(99):.1f}x"
        out.append(
            f"| {line.name} | {line.connections:,} | {line.notices:,} | "
            f"{line.tally.expected:,} | {line.lost:,} | {line.quantile(50):.1f} | "
            f"{line.quantile(90):.1f} | {line.quantile(99):.1f} | "
            f"{line.cpu / delivered * 1e6:.0f} µs | {ratio} |"
        )
    if held:
        last = lines[-1]
        out += [
            "",
            f"Held by one gateway process: {last.connections:,} connections (the last row, each "
            f"session changed {HOLD_CHANGES:g} times a second), opened and subscribed in "
            f"{last.connect_seconds:.1f} s; the gateway's resident memory "
            f"{held['rss_before']:.0f} MiB before them, {last.rss:.0f} MiB holding them.",
        ]
    return out


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tp-fanout-"))
    with running_nats(work / "nats") as nats_server:
        print("\n".join(await run(nats_server, work)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-raw"]:
        asyncio.run(serve_raw(int(sys.argv[2]), sys.argv[3]))
    else:
        asyncio.run(main())
