"""How a process logs."""

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
