"""Structured logs and metrics shared by every tutorpulse service."""

from shared.observability.logging import configure_logging
from shared.observability.settings import LogSettings

__all__ = ["LogSettings", "configure_logging"]
