"""Waiting on a running cluster, and the environment its processes get."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 90.0, every: float = 0.05
) -> float:
    """Wait for an async condition; returns the seconds it took. ``timeout`` only bounds a
    failure (a hung cluster), it never decides success."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


def child_environment(base: Mapping[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "TUTORPULSE_LOG_LEVEL": "WARNING",
        "TUTORPULSE_LOG_FORMAT": "json",
        **base,
    }
