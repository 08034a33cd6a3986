"""Live latency: command sent -> delta on the tutor's websocket, and where the time goes.

``SESSIONS`` live sessions of 5 students each; every second one student of each session has
their attendance mark flipped over HTTP (each student every 5 s), and a supervisor's websockets
follow every session. Every process runs on the same cores: PostgreSQL, nats-server, the command
service, the relay, the projection service, the live gateway and this load generator.

Along the chain of each command the bench takes these times, all on this machine's wall clock:

- ``sent``: the client starts the request;
- ``event``: the event's ``occurred_at``, set by the command service while it handles it;
- ``answered``: the client has the 2xx answer (with the command's ``position``);
- ``published``: the relay's publish of the command's last event reaches a core NATS
  subscription of this process on ``tp.evt.>`` (matched by ``Tp-Notification-Id``);
- ``noticed``: the projection service's change notice for the session document reaches a
  subscription on ``tp.delta.>``;
- ``delta``: the delta with a new version of the session reaches the supervisor's websocket.

``python -m tests.bench.live`` runs it alone (``BENCH_LIVE_SESSIONS``, ``BENCH_LIVE_SECONDS``,
``BENCH_LIVE_COMMAND_WORKERS``) and prints its lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import nats
import websockets
from nats.aio.msg import Msg

from services.cluster_ha import free_ports
from services.command.application import TutoringCentres
from shared.events import decode
from shared.eventstore import EventStoreSettings
from shared.privacy import new_master_key
from shared.readmodels.deltas import decode_notice
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.tokens import mint
from tests.bench.read_side import MARK_ROUNDS, SESSIONS, STUDENTS, populate, streams_afresh
from tests.support.servers import NatsServer, PostgresServer

SECONDS = float(os.environ.get("BENCH_LIVE_SECONDS", "20"))
COMMAND_WORKERS = int(os.environ.get("BENCH_LIVE_COMMAND_WORKERS", "1"))
"""uvicorn workers of the command service: one, its own default (with two, each process's kept
aggregates are often stale and every command costs more CPU; docs/benchmarks.md, "Commands")."""
LIGHT_SESSIONS = 40
DEADLINE = 10.0
"""A command whose delta has not arrived this long after its answer counts as missing."""
CENTRE = "bench-live"
SERVICES = ("services.relay", "services.projections", "services.live_gateway", "services.command")


@dataclass
class Timing:
    sent: float
    answered: float = 0.0
    position: int = 0
    event: float = 0.0
    published: float = 0.0
    noticed: float = 0.0
    delta: float = 0.0


@dataclass
class Probe:
    """What the chain's NATS subscriptions saw, by notification id and by session."""

    published: dict[int, float] = field(default_factory=dict)
    noticed: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    occurred: dict[int, float] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)

    async def on_event(self, message: Msg) -> None:
        now = time.time()
        headers = message.headers or {}
        notification = int(headers.get("Tp-Notification-Id", "0"))
        self.published[notification] = now
        event = decode(message.data)
        self.occurred[notification] = event.occurred_at.timestamp()
        self.kinds[notification] = (
            f"{type(event).__name__} {getattr(event, 'previous_status', None)}"
            f"->{getattr(event, 'status', None)}"
        )

    async def on_notice(self, message: Msg) -> None:
        now = time.time()
        notice = decode_notice(message.data)
        if notice.kind == "session":
            self.noticed.setdefault(notice.key, []).append((notice.version, now))


def process_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and its descendants (uvicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    totals = dict.fromkeys(pids, 0.0)
    owners = {pid: name for name, pid in pids.items()}
    for pid, seconds in used.items():
        ancestor = pid
        for _ in range(16):
            if ancestor in owners:
                totals[owners[ancestor]] += seconds
                break
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                break
    return totals


async def measure(
    command_url: str,
    gateway_url: str,
    nats_url: str,
    supervisor: Actor,
    sessions: list[tuple[UUID, list[UUID]]],
    marks: dict[UUID, bool],
) -> tuple[list[Timing], int]:
    """Drive the load for ``SECONDS``; the timings of the commands answered, and how many
    commands failed or got no delta within ``DEADLINE``. ``marks``: whether each student is
    marked PRESENT now (else LATE); every command flips one, so that each changes the view."""
    token = mint(supervisor)
    headers = {"Authorization": f"Bearer {token}"}
    probe = Probe()
    nc = await nats.connect(nats_url)
    await nc.subscribe(f"tp.evt.{CENTRE}.>", cb=probe.on_event, pending_msgs_limit=-1)
    await nc.subscribe(f"tp.delta.{CENTRE}.session.>", cb=probe.on_notice, pending_msgs_limit=-1)
    versions: dict[str, int] = {}
    waiting: dict[str, asyncio.Future[float]] = {}
    snapshots: set[str] = set()

    async def follow(socket: Any) -> None:
        async for raw in socket:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "ping":
                await socket.send('{"type":"pong"}')
            elif message["type"] in ("snapshot", "delta"):
                topic = message["topic"]
                snapshots.add(topic)
                # Only a new version is the command's change (same-version deltas are clock ticks).
                if message["version"] <= versions.get(topic, 0):
                    continue
                versions[topic] = message["version"]
                future = waiting.get(topic)
                if future is not None and not future.done():
                    future.set_result(now)

    sockets = []
    for start in range(0, len(sessions), 50):
        socket = await websockets.connect(
            gateway_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            ping_interval=None,
            max_queue=None,
        )
        for session, _ in sessions[start : start + 50]:
            await socket.send(json.dumps({"type": "subscribe", "topic": f"session:{session}"}))
        sockets.append(socket)
    readers = [asyncio.create_task(follow(s)) for s in sockets]
    while len(snapshots) < len(sessions):
        await asyncio.sleep(0.05)
    timings: list[Timing] = []
    failed = 0
    reasons: dict[str, int] = {}
    deadline = time.monotonic() + SECONDS
    connector = aiohttp.TCPConnector(limit=len(sessions) + 8)
    async with aiohttp.ClientSession(command_url, connector=connector) as http:

        async def session_loop(index: int, session: UUID, students: list[UUID]) -> None:
            nonlocal failed
            await asyncio.sleep(index / len(sessions))  # spread the ticks over the second
            topic = f"session:{session}"
            tick = 0
            while time.monotonic() < deadline:
                student = students[tick % STUDENTS]
                # Every command changes something: the student's mark flips from the last one.
                present = marks[student] = not marks[student]
                waiting[topic] = asyncio.get_running_loop().create_future()
                timing = Timing(sent=time.time())
                started = time.monotonic()
                async with http.post(
                    "/api/academic/attendance/bulk",
                    headers=headers,
                    json={
                        "sessionId": str(session),
                        "records": [
                            {"studentId": str(student), "status": "PRESENT" if present else "LATE"}
                        ],
                    },
                ) as response:
                    timing.answered = time.time()
                    body = (
                        await response.json()
                        if response.status == 200
                        else {"problem": await response.text()}
                    )
                if response.status == 200:
                    timing.position = int(body["position"])
                    try:
                        timing.delta = await asyncio.wait_for(waiting[topic], DEADLINE)
                        version = versions[topic]
                        timing.noticed = next(
                            (t for v, t in probe.noticed.get(str(session), []) if v >= version),
                            0.0,
                        )
                        timings.append(timing)
                    except TimeoutError:
                        failed += 1
                        published = timing.position in probe.published
                        noticed = any(
                            v > versions.get(topic, 0)
                            for v, _ in probe.noticed.get(str(session), [])
                        )
                        reason = (
                            f"no delta (relayed: {published}, noticed: {noticed}, "
                            f"{probe.kinds.get(timing.position - 1)}, "
                            f"{probe.kinds.get(timing.position)})"
                        )
                        reasons[reason] = reasons.get(reason, 0) + 1
                else:
                    failed += 1
                    reason = f"HTTP {response.status}: {str(body)[:120]}"
                    reasons[reason] = reasons.get(reason, 0) + 1
                tick += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

        await asyncio.gather(*[session_loop(i, s, st) for i, (s, st) in enumerate(sessions)])
    for reader in readers:
        reader.cancel()
    for socket in sockets:
        await socket.close()
    await nc.close()
    if reasons:
        print("live bench failures:", reasons, file=sys.stderr)
    for timing in timings:
        timing.published = probe.published.get(timing.position, 0.0)
        timing.event = probe.occurred.get(timing.position, 0.0)
    return timings, failed


async def caught_up(metrics_url: str, head: int, timeout: float = 300) -> None:
    """Until the projection service has applied everything up to ``head`` (populated before
    the services started), so the load is measured on a cluster that is not catching up."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(metrics_url) as response:
                text = await response.text()
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name == "tutorpulse_projection_watermark" and float(value) >= head:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the projection service did not reach {head} in {timeout:g} s")


BATCHES = {
    "relay": ("tutorpulse_relay_batch_seconds", "tutorpulse_relay_published_total"),
    "projections": ("tutorpulse_projection_batch_seconds", "tutorpulse_projection_events_total"),
}
"""Per service: its histogram of the time one batch takes, and its counter of events."""


async def scrape(url: str) -> dict[str, float]:
    """A Prometheus text page as {sample name with labels: value}."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def batches(before: dict[str, float], after: dict[str, float], service: str) -> str:
    """How many batches a service handled between two scrapes, their mean size and time."""
    histogram, counter = BATCHES[service]

    def moved(prefix: str) -> float:
        return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix))

    count = moved(f"{histogram}_count")
    if not count:
        return f"{service}: no batch"
    events = moved(f"{counter}{{") + after.get(counter, 0.0) - before.get(counter, 0.0)
    seconds = moved(f"{histogram}_sum")
    return (
        f"{service}: {count:,.0f} batches of {events / count:.1f} events on average, "
        f"{1000 * seconds / count:.1f} ms each"
    )


def gateway_counts(before: dict[str, float], after: dict[str, float]) -> str:
    """What the gateway sent, dropped (a client's full queue) and sent again as snapshots."""
    moved = {
        name: after[name] - before.get(name, 0.0)
        for name in after
        if name.startswith("tutorpulse_gateway_") and "_total" in name
    }
    return ", ".join(
        f"{name.removeprefix('tutorpulse_gateway_')} {value:,.0f}"
        for name, value in sorted(moved.items())
        if value
    )


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"{q[49]:.1f} | {q[89]:.1f} | {q[98]:.1f} | {max(values):.1f}"


def breakdown(timings: list[Timing]) -> list[str]:
    """The table of the chain's steps, each in ms: p50 | p90 | p99 | max."""
    seen = [t for t in timings if t.published and t.noticed and t.event]

    def ms(values: list[float]) -> list[float]:
        return [v * 1000 for v in values]

    steps = [
        ("**sent -> delta on the websocket**", ms([t.delta - t.sent for t in timings])),
        ("answered -> delta on the websocket", ms([t.delta - t.answered for t in timings])),
        ("sent -> answered (HTTP, command, commit)", ms([t.answered - t.sent for t in timings])),
        ("sent -> event created (to the handler)", ms([t.event - t.sent for t in seen])),
        ("event created -> answered", ms([t.answered - t.event for t in seen])),
        ("event created -> published (commit, relay)", ms([t.published - t.event for t in seen])),
        ("published -> change notice (projection)", ms([t.noticed - t.published for t in seen])),
        ("change notice -> delta (gateway)", ms([t.delta - t.noticed for t in seen])),
    ]
    out = ["| step | p50 ms | p90 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
    out += [f"| {name} | {quantiles(values)} |" for name, values in steps]
    return out


async def run(
    pg: PostgresServer, nats_server: NatsServer, work: Path, start_service: Any, wait_http: Any
) -> list[str]:
    database = pg.fresh_database("bench_live")
    env = {
        **os.environ,
        **database.env(),
        "TUTORPULSE_NATS_URL": nats_server.url,
        "TUTORPULSE_LOG_LEVEL": "WARNING",
        "TUTORPULSE_READ_STORE": "postgres",
        "TUTORPULSE_COMMAND_WORKERS": str(COMMAND_WORKERS),
        "TUTORPULSE_BLOB_DIR": str(work / "live-blobs"),
        "TUTORPULSE_BLOB_URL_KEY": os.environ.get(
            "TUTORPULSE_BLOB_URL_KEY", secrets.token_urlsafe(48)
        ),
    }
    centres = TutoringCentres(load(EventStoreSettings, database.env()))
    started = time.perf_counter()
    supervisor, sessions = populate(centres)
    populate_seconds = time.perf_counter() - started
    head = centres.position
    centres.close()

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams_afresh(js)
    await nc.close()

    names = ("command", "relay", "projections", "gateway")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env |= {
        "TUTORPULSE_COMMAND_PORT": str(ports["command"]),
        "TUTORPULSE_RELAY_PORT": str(ports["relay"]),
        "TUTORPULSE_PROJECTIONS_PORT": str(ports["projections"]),
        "TUTORPULSE_GATEWAY_PORT": str(ports["gateway"]),
    }
    processes = {m: start_service(m, env, work / f"{m}.live.log") for m in SERVICES}
    results: list[tuple[int, list[Timing], int, dict[str, float], list[str]]] = []
    metrics = {
        service: f"http://127.0.0.1:{ports[service]}/metrics"
        for service in ("relay", "projections", "gateway")
    }
    last_round_present = (MARK_ROUNDS - 1) % 2 == 0  # populate() alternates PRESENT and LATE
    marks = {student: last_round_present for _, students in sessions for student in students}
    try:
        for name in ("relay", "projections", "gateway", "command"):
            await wait_http(f"http://127.0.0.1:{ports[name]}/ready")
        await caught_up(f"http://127.0.0.1:{ports['projections']}/metrics", head)
        pids = {m.removeprefix("services."): p.pid for m, p in processes.items()}
        if pg.control is not None:
            postmaster = pg.control.data / "postmaster.pid"
            pids["postgres"] = int(postmaster.read_text().split()[0])
        pids["nats-server"] = nats_server.pid
        pids["load generator"] = os.getpid()
        for count in (LIGHT_SESSIONS, SESSIONS):
            scraped = {service: await scrape(url) for service, url in metrics.items()}
            before = process_cpu(pids)
            timings, failed = await measure(
                f"http://127.0.0.1:{ports['command']}",
                f"ws://127.0.0.1:{ports['gateway']}/live",
                nats_server.url,
                supervisor,
                sessions[:count],
                marks,
            )
            after = process_cpu(pids)
            cpu = {name: after[name] - before[name] for name in pids}
            now = {service: await scrape(url) for service, url in metrics.items()}
            seen = [batches(scraped[s], now[s], s) for s in ("relay", "projections")]
            seen.append("gateway: " + gateway_counts(scraped["gateway"], now["gateway"]))
            results.append((count, timings, failed, cpu, seen))
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=15)

    out = [
        "",
        "## Live latency",
        "",
        f"`tests/bench/live.py`: {head:,} events in the store ({SESSIONS} live sessions x "
        f"{STUDENTS} students, {MARK_ROUNDS} rounds of attendance; populated in "
        f"{populate_seconds:.1f} s), PostgreSQL event and read stores, command service with "
        f"{COMMAND_WORKERS} uvicorn worker(s); one student of each session marked every second "
        f"for {SECONDS:.0f} s, a supervisor's websockets following every session.",
    ]
    for count, timings, failed, cpu, seen in results:
        done = len(timings)
        total = sum(cpu.values())
        per = ", ".join(f"{name} {1000 * s / max(done, 1):.2f}" for name, s in cpu.items())
        out += [
            "",
            f"{count} sessions x {STUDENTS} ({count} commands/s offered): {done} commands with "
            f"their delta ({done / SECONDS:,.0f}/s), {failed} failed or without a delta within "
            f"{DEADLINE:g} s; CPU {1000 * total / max(done, 1):.1f} ms per command ({per}), "
            f"{total / SECONDS:.2f} cores. Batches: {'; '.join(seen)}.",
            "",
            *breakdown(timings),
        ]
    return out


async def main() -> None:
    from tests.bench.__main__ import start_service, wait_http
    from tests.support.servers import running_nats, running_postgres

    os.environ.setdefault("TUTORPULSE_JWT_SECRET", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_PRIVACY_MASTER_KEYS", f"bench={new_master_key()}")
    os.environ.setdefault("TUTORPULSE_PAPER_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_RATE_LIMIT", "1000000/second")
    os.environ.setdefault("TUTORPULSE_HELP_RATE_LIMIT", "1000000/second")
    work = Path(tempfile.mkdtemp(prefix="tp-live-"))
    with running_postgres() as pg, running_nats(work / "nats") as nats_server:
        print("\n".join(await run(pg, nats_server, work, start_service, wait_http)))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
