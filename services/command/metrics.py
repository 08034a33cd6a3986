"""The command service's metrics: commands by verb and outcome, and command requests by centre.

``tutorpulse_centre_commands_total{centre, outcome}`` counts every request that asks for a
change (not ``GET``) under ``/api/`` once its answer starts: ``ok`` (2xx), ``rejected`` (4xx:
refused, invalid, not allowed, rate-limited) or ``error`` (5xx), by the centre the caller acts
in (``none`` when the request names no valid token). Centres are bounded by
:class:`shared.observability.metrics.CentreLabels`.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import Message, Scope
from prometheus_client import Counter

from shared.http.auth import actor_from
from shared.observability.metrics import CentreLabels, Children
from shared.observability.settings import MetricsSettings

COMMANDS = Counter(
    "tutorpulse_commands_total", "Commands handled, by command and outcome", ["command", "outcome"]
)
CENTRE_COMMANDS = Counter(
    "tutorpulse_centre_commands_total",
    "Command requests answered, by centre and outcome (ok 2xx, rejected 4xx, error 5xx)",
    ["centre", "outcome"],
)

NO_CENTRE = "none"
"""The centre label of a request without a valid token."""

READS = frozenset({"GET", "HEAD", "OPTIONS"})


def outcome_of(status: int) -> str:
    if status >= 500:
        return "error"
    if status >= 400:
        return "rejected"
    return "ok"


class CentreCounts:
    """A ``before_send`` hook of the command app counting each command request by centre and
    outcome (children cached: a dict read per request)."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._label = CentreLabels(settings)
        self._children: Children[Any] = Children(CENTRE_COMMANDS.labels)

    def centre_of(self, scope: Scope) -> str:
        try:
            actor = actor_from(ASGIConnection(scope))
        except Exception:  # no token, a bad one, or a centre it may not act in
            return NO_CENTRE
        return self._label(actor.centre_id)

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        if scope.get("method", "GET") in READS or not scope["path"].startswith("/api/"):
            return
        outcome = outcome_of(int(message["status"]))
        self._children[(self.centre_of(scope), outcome)].inc()
