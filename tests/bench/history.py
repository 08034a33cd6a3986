"""Flat with history: the reads a centre makes all day, for a centre with a year of history
beside one with only today's sessions, in the same run and the same stores.

Both centres are seeded (:mod:`tests.bench.year`) into one event store, their read models are
built by the rebuild, and each read is timed in-process through the same access functions the
query API and the live gateway call (``shared.readmodels.access``), the two centres taking
turns so that both see the same machine. ``python -m tests.bench.history`` prints the table;
``BENCH_HISTORY_EVENTS`` (default 1,000,000) sizes the year, ``BENCH_HISTORY_STORE``
(``sqlite`` by default, or ``postgres``) picks both stores, ``BENCH_HISTORY_READS`` the number
of timed reads of each kind.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.command.application import TutoringCentres
from services.projections.rebuild import rebuild
from shared.eventstore import EventStoreSettings
from shared.readmodels import access, views
from shared.readmodels.documents import CATCH_UP, SESSION
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.readmodels.views import utcnow
from shared.settings import load
from tests.bench.year import YearOfHistory, seed_year
from tests.support.servers import running_postgres

EVENTS = int(os.environ.get("BENCH_HISTORY_EVENTS", "1000000"))
STORE = os.environ.get("BENCH_HISTORY_STORE", "sqlite")
READS = int(os.environ.get("BENCH_HISTORY_READS", "300"))
TARGET = 2.0
"""The year's p99 may be at most this many times the empty centre's."""

Read = Callable[[ReadStore, YearOfHistory], Any]

READS_TIMED: dict[str, Read] = {
    "My Day (a tutor with a live session)": lambda s, c: access.my_day(s, c.tutor, None, utcnow()),
    "Control Center (the live session, its tutor)": lambda s, c: access.control_center(
        s, c.tutor, c.live_session_id, utcnow()
    ),
    "student overview (a supervisor)": lambda s, c: access.student_overview(
        s, c.supervisor, c.student.user_id, utcnow()
    ),
    "catch-up list, first page (a supervisor)": lambda s, c: access.catch_up_list(
        s, c.supervisor, access.CatchUpFilter(), utcnow()
    ),
    "catch-up list, open and overdue (a supervisor)": lambda s, c: access.catch_up_list(
        s, c.supervisor, access.CatchUpFilter(overdue_only=True), utcnow()
    ),
    "help-request analytics, last 30 days (a supervisor)": lambda s, c: (
        access.help_request_analytics(
            s, c.supervisor, utcnow() - timedelta(days=30), utcnow(), None, utcnow()
        )
    ),
    "help-request analytics, today (a supervisor)": lambda s, c: access.help_request_analytics(
        s, c.supervisor, utcnow() - timedelta(hours=12), utcnow(), None, utcnow()
    ),
}


def _full_catch_up_list(store: ReadStore, centre: YearOfHistory) -> int:
    """The first page as it was read before the index: every catch-up document of the centre
    and their sessions (the rows as the list shows them)."""
    now = utcnow()
    catch_ups = store.centre_docs(CATCH_UP, centre.centre_id)
    sessions = store.get_many(SESSION, [c.doc.session_id for c in catch_ups])
    matching = sorted(
        (views.catch_up_urgency(c.doc), c.doc, sessions[c.doc.session_id].doc)
        for c in catch_ups
        if c.doc.session_id in sessions
    )
    page = matching[:50]
    people = access.names(
        store, {c.student_id for _, c, _ in page} | {s.tutor_id for *_, s in page}
    )
    return len([views.catch_up_row(c, s, people, now) for _, c, s in page])


def _full_analytics(store: ReadStore, centre: YearOfHistory) -> Any:
    """The last 30 days' figures as they were read before the index: every session document."""
    now = utcnow()
    sessions = [s.doc for s in store.centre_docs(SESSION, centre.centre_id)]
    people = access.names(store, {s.tutor_id for s in sessions})
    return views.help_request_analytics(sessions, people, now - timedelta(days=30), now, now)


BEFORE: dict[str, Read] = {
    "catch-up list, first page, read as before the index": _full_catch_up_list,
    "help-request analytics, last 30 days, read as before the index": _full_analytics,
}
BEFORE_READS = 5
"""Reads of each (the old reads of a year take seconds)."""


def quantiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 (nearest rank), in milliseconds."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(0.99 * len(ordered)) - 1)]


@contextlib.contextmanager
def stores(work: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The event store's and the read store's settings, on SQLite files or a PostgreSQL of its
    own."""
    if STORE == "postgres":
        with running_postgres() as pg:
            events = pg.fresh_database("history_events").env()
            read = pg.fresh_database("history_read").env()
            yield events, {**read, "TUTORPULSE_READ_STORE": "postgres"}
        return
    yield (
        {"TUTORPULSE_STORE": "sqlite", "TUTORPULSE_SQLITE_PATH": str(work / "events.sqlite")},
        {"TUTORPULSE_READ_STORE": "sqlite", "TUTORPULSE_READ_SQLITE_PATH": str(work / "rm.sqlite")},
    )


def run(events: int = EVENTS, reads: int = READS) -> list[str]:
    with (
        tempfile.TemporaryDirectory(prefix="tp-history-") as folder,
        stores(Path(folder)) as (
            event_env,
            read_env,
        ),
    ):
        centres = TutoringCentres(load(EventStoreSettings, event_env))
        year = seed_year(centres, events=events, centre_id="year")
        empty = seed_year(centres, events=0, centre_id="today-only", seed=1)
        read = open_read_store(load(ReadStoreSettings, read_env))
        rebuilt = rebuild(centres, read, settle_timeout=0)
        timings: dict[str, dict[str, list[float]]] = {name: {} for name in READS_TIMED}
        for name, read_one in [*READS_TIMED.items(), *BEFORE.items()]:
            for centre in (year, empty):
                read_one(read, centre)  # warm: the first read of a kind pays for imports
            timings[name] = {}
            for _ in range(BEFORE_READS if name in BEFORE else reads):
                for centre in (year, empty):
                    started = time.perf_counter()
                    read_one(read, centre)
                    elapsed = (time.perf_counter() - started) * 1000
                    timings[name].setdefault(centre.centre_id, []).append(elapsed)
        read.close()
        centres.close()
    out = [
        "",
        "## Flat with history",
        "",
        f"A centre with a year of history ({year.events:,} events: {year.sessions:,} sessions, "
        f"{year.catch_ups:,} catch-ups, {year.help_requests:,} help requests, "
        f"{year.tutors} tutors, {year.students:,} students; seeded in {year.seconds:.0f} s, "
        f"{year.rate:,.0f} events/s) beside one with only today's sessions "
        f"({empty.events:,} events), {STORE} stores, read models rebuilt "
        f"({rebuilt.events:,} events at {rebuilt.rate:,.0f}/s); {reads} reads of each, "
        "in-process, taking turns:",
        "",
        f"(The last two rows, {BEFORE_READS} reads each, read as the list and the analytics did "
        "before their indexes, for comparison.)",
        "",
        "| read | year p50 ms | year p99 ms | today-only p50 ms | today-only p99 ms | p99 ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, by_centre in timings.items():
        y50, y99 = quantiles(by_centre[year.centre_id])
        e50, e99 = quantiles(by_centre[empty.centre_id])
        ratio = y99 / e99 if e99 else 0.0
        mark = "" if ratio <= TARGET else " (over 2x)"
        out.append(
            f"| {name} | {y50:.2f} | {y99:.2f} | {e50:.2f} | {e99:.2f} | {ratio:.2f}x{mark} |"
        )
    return out


REPORT = Path("var/bench/history.md")


def main() -> None:
    out = run()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
