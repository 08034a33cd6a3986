"""Rebuild of a centre's year of history: ``python -m tests.bench.rebuild_year``, or
``make bench-rebuild``.

Seeds ``BENCH_REBUILD_EVENTS`` events (1,000,000 by default; fewer for a quick run) of one
centre's year (:func:`tests.bench.year.seed_year`: 50 tutors, 1,000 students) straight into a
PostgreSQL event store, then rebuilds the read models from it with the operators' command,
``python -m services.projections.rebuild``, once into a PostgreSQL read store and once into a
SQLite one, each in a process of its own so that its peak memory is its own. The baseline, in
the same run, is reading the same events from the event store in the rebuild's batches of
1,000 (``select_notifications``, nothing decoded or applied): what a rebuild cannot go below.

Writes ``var/bench/rebuild_year.md`` (and prints it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.settings import load
from tests.bench.year import seed_year
from tests.support.servers import PostgresServer, running_postgres

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "var" / "bench" / "rebuild_year.md"
EVENTS = int(os.environ.get("BENCH_REBUILD_EVENTS", "1000000"))
BATCH = 1000
_RESULT = re.compile(r"(?P<events>\d+) events in (?P<seconds>[\d.]+) s")


@dataclass(frozen=True)
class Rebuilt:
    store: str
    events: int
    seconds: float
    peak_mib: float
    """The rebuild process's peak resident memory."""
    cpu_seconds: float
    """The rebuild process's CPU time, its start-up included (the database server's is not
    counted)."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def read_floor(centres: TutoringCentres) -> float:
    """Events per second read from the event store in batches of ``BATCH``."""
    started, position, count = time.perf_counter(), 0, 0
    while notifications := centres.recorder.select_notifications(
        position, BATCH, inclusive_of_start=False
    ):
        position = notifications[-1].id
        count += len(notifications)
    return count / (time.perf_counter() - started)


def rebuild_in_a_process(name: str, env: dict[str, str], log: Path) -> Rebuilt:
    """Run the rebuild command; its own figures, and its peak memory from the kernel."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.projections.rebuild", "--settle-timeout", "0"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    found = _RESULT.search(text)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"the rebuild into {name} failed:\n{text[-3000:]}")
    return Rebuilt(
        name,
        int(found["events"]),
        float(found["seconds"]),
        usage.ru_maxrss / 1024,
        usage.ru_utime + usage.ru_stime,
    )


def run(pg: PostgresServer, work: Path, events: int = EVENTS) -> list[str]:
    database = pg.fresh_database("bench_rebuild_year")
    centres = TutoringCentres(load(EventStoreSettings, database.env()))
    year = seed_year(centres, events=events)
    floor = read_floor(centres)
    centres.close()
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TUTORPULSE_")},
        **database.env(),
        "TUTORPULSE_LOG_LEVEL": "WARNING",
    }
    results = [
        rebuild_in_a_process(
            "PostgreSQL",
            base | {"TUTORPULSE_READ_STORE": "postgres"},
            work / "rebuild-postgres.log",
        ),
        rebuild_in_a_process(
            "SQLite",
            base
            | {
                "TUTORPULSE_READ_STORE": "sqlite",
                "TUTORPULSE_READ_SQLITE_PATH": str(work / "history.sqlite"),
            },
            work / "rebuild-sqlite.log",
        ),
    ]
    out = [
        "",
        "## Rebuild of a year of history",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[1]:.1f} (shared machines: read the CPU per event, the rebuild "
        "process's own, beside the rate). One centre's year "
        f"({year.tutors} tutors, {year.students:,} students, {year.sessions:,} sessions): "
        f"{year.events:,} events seeded into a PostgreSQL event store in {year.seconds:.0f} s "
        f"({year.rate:,.0f} events/s). Each rebuild is `python -m services.projections.rebuild` "
        "in a process of its own.",
        "",
        "| what | events | seconds | events per second | vs. reading the events | peak memory "
        "| CPU per event |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| reading the events from the event store, batches of {BATCH:,} (baseline) "
        f"| {year.events:,} | {year.events / floor:.1f} | {floor:,.0f} | baseline | | |",
    ]
    for result in results:
        out.append(
            f"| rebuild of {result.events:,} events, {result.store} read store "
            f"| {result.events:,} | {result.seconds:.1f} | {result.rate:,.0f} "
            f"| {result.rate / floor:.2f}x | {result.peak_mib:,.0f} MiB "
            f"| {result.cpu_seconds / result.events * 1e6:.0f} µs |"
        )
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tp-bench-rebuild-") as folder:
        work = Path(folder)
        with running_postgres(work / "pg") as pg:
            out = run(pg, work)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
