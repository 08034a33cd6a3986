"""Log an outage once when it starts and once when it ends, never once per failed call.

A service that cannot reach something it needs (the event store, the read-model store, NATS)
sees the failure on every request or every loop round; logging each would bury the one line
that matters. :class:`OutageLog` turns a stream of failures and successes into two lines:
``<what>.unavailable`` (with the first reason) and ``<what>.recovered`` (with how long it
lasted and how many failures it counted). It is safe to use from worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outage:
    reason: str
    started: float
    """``time.monotonic()`` of the first failure."""
    failures: int


class OutageLog:
    def __init__(self, what: str, **context: str) -> None:
        """``what``: the event name prefix (``command.store``, ``relay.nats``…); ``context``:
        fields added to both lines (the service name)."""
        self.what = what
        self._context = context
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._started = 0.0
        self._failures = 0

    @property
    def current(self) -> Outage | None:
        with self._lock:
            if self._reason is None:
                return None
            return Outage(self._reason, self._started, self._failures)

    def failed(self, reason: str) -> bool:
        """Count a failure; log and return True if it starts an outage."""
        with self._lock:
            self._failures += 1
            if self._reason is not None:
                return False
            self._reason, self._started, self._failures = reason, time.monotonic(), 1
        log.error(f"{self.what}.unavailable", reason=reason, **self._context)
        return True

    def succeeded(self) -> bool:
        """Note that it works; log and return True if that ends an outage."""
        with self._lock:
            if self._reason is None:
                return False
            reason, failures = self._reason, self._failures
            lasted = time.monotonic() - self._started
            self._reason, self._failures = None, 0
        log.warning(
            f"{self.what}.recovered",
            after_seconds=round(lasted, 3),
            failures=failures,
            reason=reason,
            **self._context,
        )
        return True
