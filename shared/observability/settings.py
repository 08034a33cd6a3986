"""How a process logs, and how its per-centre metrics are bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.settings import setting


@dataclass(frozen=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error", "critical"] = setting(
        "TUTORPULSE_LOG_LEVEL",
        "info",
        "the threshold: `debug`, `info`, `warning`, `error` or `critical` (any case)",
        shown="`INFO`",
    )
    format: Literal["json", "console"] = setting(
        "TUTORPULSE_LOG_FORMAT",
        "json",
        "`json` (JSON lines) or `console` (for people; `make run` sets it)",
    )
    otel_endpoint: str | None = setting(
        "TUTORPULSE_OTEL_ENDPOINT",
        None,
        "an OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`): the "
        "process sends OpenTelemetry traces of each click there, with `service.name` "
        "`tutorpulse-<program>`; none: no tracing (nothing of OpenTelemetry is loaded)",
    )


@dataclass(frozen=True)
class MetricsSettings:
    centres: tuple[str, ...] = setting(
        "TUTORPULSE_METRICS_CENTRES",
        (),
        "centre ids that get their own `centre` label in per-centre metrics (comma-separated; "
        "every other centre is `other`); none: the first `TUTORPULSE_METRICS_CENTRE_LIMIT` "
        "centres a process sees",
        shown="none",
    )
    centre_limit: int = setting(
        "TUTORPULSE_METRICS_CENTRE_LIMIT",
        50,
        "with no `TUTORPULSE_METRICS_CENTRES`, how many centres a process labels by id before "
        "counting the rest as `other` (bounds the series of every per-centre metric)",
        minimum=0,
        maximum=1000,
    )
