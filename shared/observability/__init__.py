"""Structured logs and metrics shared by every tutorpulse service."""

from shared.observability.logging import configure_logging

__all__ = ["configure_logging"]
