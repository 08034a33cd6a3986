"""Aggregates kept between commands, brought up to date by one query for what came after.

Loading an aggregate from its whole history reads every one of its events from the store each
time, so a command on a long-lived aggregate (a tutor's week, a busy session) costs more as the
history grows. :class:`AggregateCache` keeps, per aggregate, the version it last saw and the
aggregate's state frozen with :mod:`pickle`; a load thaws a private copy and applies only the
events stored after that version (one query, which usually returns none). The state is always
as stored when the query ran, exactly as a full load would give it: other processes' writes are
read, never missed, and a decision taken on it is still refused on a version conflict.

Each load gets its own copy (commands change the aggregates they load). The eventsourcing
library's own cache does the same with ``copy.deepcopy``, which measured 0.75 ms for a tutor's
week of 41 sessions, against 0.37 ms for a pickle round trip and 0.86 ms for a full reload.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import EventStore as LibraryEventStore

Project = Callable[[Any, Iterable[Any]], Any]


class AggregateCache:
    """Aggregates as of their last load, least recently used out, in at most ``limit_bytes``
    of pickled state."""

    def __init__(self, events: LibraryEventStore[UUID], limit_bytes: int = 64 << 20) -> None:
        self._events = events
        self._limit = limit_bytes
        self._bytes = 0
        self._entries: OrderedDict[UUID, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        """Loads that started from a kept state."""

    def get(self, aggregate_id: UUID, project: Project) -> Any:
        """The aggregate as stored now, a copy of its own; ``AggregateNotFoundError`` if it has
        no events. ``project(aggregate_or_None, events)`` applies events (a domain class's
        ``project``)."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None:
                self._entries.move_to_end(aggregate_id)
        if entry is None:
            aggregate = project(None, self._events.get(aggregate_id))
        else:
            self.hits += 1
            version, frozen = entry
            aggregate = pickle.loads(frozen)  # our own bytes, never from outside
            later = list(self._events.get(aggregate_id, gt=version))
            if not later:
                return aggregate
            aggregate = project(aggregate, later)
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        self._keep(aggregate_id, aggregate.version, pickle.dumps(aggregate, -1))
        return aggregate

    @property
    def size(self) -> int:
        """Bytes of pickled state kept."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, aggregate_id: UUID) -> None:
        with self._lock:
            kept = self._entries.pop(aggregate_id, None)
            if kept is not None:
                self._bytes -= len(kept[1])

    def _keep(self, aggregate_id: UUID, version: int, frozen: bytes) -> None:
        if len(frozen) > self._limit:
            return
        with self._lock:
            kept = self._entries.get(aggregate_id)
            if kept is not None:
                if kept[0] >= version:
                    return
                self._bytes -= len(kept[1])
            self._entries[aggregate_id] = (version, frozen)
            self._bytes += len(frozen)
            self._entries.move_to_end(aggregate_id)
            while self._bytes > self._limit:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)
