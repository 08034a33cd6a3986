"""Outages for tests: nats-server killed and started again, or frozen, under its clients."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servers import NatsServer, suspend


def restart_nats(server: NatsServer) -> None:
    """kill -9, then start it again on the same port with the same JetStream store."""
    server.kill()
    server.start()


@contextmanager
def frozen(server: NatsServer) -> Iterator[None]:
    """SIGSTOP: connections stay open and nothing answers, until the block ends (SIGCONT)."""
    suspend(server.pid)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)
