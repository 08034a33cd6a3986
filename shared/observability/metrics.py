"""Prometheus metrics shared by the services: the scrape of ``/metrics`` (one process, or every
worker of a service started with several: prometheus-client's multiprocess mode), and bounded
per-centre labels.

**Several workers.** Each uvicorn worker is a process with its own registry, so a counter read
through one worker's registry counts only that worker's share. With
``TUTORPULSE_COMMAND_WORKERS`` above 1 the command service's start
(``python -m services.command``) empties a directory (:func:`prepare_directory`) and names it
in the workers' environment as ``PROMETHEUS_MULTIPROC_DIR`` before starting them; each worker's
prometheus-client then keeps its values in files there, and ``/metrics`` (:func:`exposition`
with that directory) adds up every worker's files, so whichever worker answers reads the same
totals. A gauge says how its workers' values combine (``multiprocess_mode``: ``livesum`` for a
count of things open now, ``max`` for a position or a flag).

**Centres.** A centre id as a label value is unbounded (every new centre makes new series), so
per-centre metrics go through :class:`CentreLabels`: the centres named in
``TUTORPULSE_METRICS_CENTRES`` have their own label, or, when none is named, the first
``TUTORPULSE_METRICS_CENTRE_LIMIT`` centres a process sees; every other centre is counted
under ``centre="other"``. A per-centre metric thus has at most that many + 1 values of
``centre`` for each of its other labels.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from shared.observability.settings import MetricsSettings

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""The variable by which prometheus-client (in each worker, when it is first imported) learns
where to keep its values: set for the workers by the program that starts them, from a declared
setting, never read by tutorpulse itself."""

OTHER = "other"
"""The label of every centre beyond the bound."""


class CentreLabels:
    """The ``centre`` label of a centre id, bounded (see the module's doc). Thread-safe."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._named = frozenset(settings.centres)
        self._limit = settings.centre_limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, centre: object) -> str:
        key = str(centre)
        if self._named:
            return key if key in self._named else OTHER
        if key in self._seen:
            return key
        with self._lock:
            if key in self._seen:
                return key
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(key)
            return key


C = TypeVar("C")


class Children(Generic[C]):
    """A labelled metric's children by their label values, each looked up once: on the hot
    path ``children[key]`` is a dict read, not prometheus-client's ``.labels()`` (which builds
    and checks a tuple of strings under a lock every call)."""

    def __init__(self, make: Callable[..., C]) -> None:
        self._make = make
        self._children: dict[tuple[str, ...], C] = {}

    def __getitem__(self, key: tuple[str, ...]) -> C:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._make(*key)
        return child


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` for a multiprocess run and empty it of an earlier run's values (a
    counter would otherwise go on from the last run's workers' totals)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()


def exposition(directory: Path | None) -> bytes:
    """The text ``/metrics`` answers: this process's registry, or with ``directory`` the sum
    over every process that keeps its values there."""
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_ended(directory: Path | None, pid: int) -> None:
    """A worker stops: its ``livesum``/``liveall`` gauges (connections it held) stop counting;
    its counters stay in the totals."""
    if directory is not None:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


class Backlog:
    """A backlog's size and for how long it has not been empty: :meth:`set` sets the size gauge
    (as ``Gauge.set``); the seconds gauge reads, when scraped, the time since the size was last
    0 (0 while it is). For a single-process service (the seconds are computed at scrape)."""

    def __init__(
        self, size: Gauge, seconds: Gauge, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = size
        self._clock = clock
        self._since: float | None = None
        seconds.set_function(self.seconds)

    def set(self, value: float) -> None:
        self._size.set(value)
        if value <= 0:
            self._since = None
        elif self._since is None:
            self._since = self._clock()

    def seconds(self) -> float:
        since = self._since
        return 0.0 if since is None else max(0.0, self._clock() - since)
