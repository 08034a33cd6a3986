"""Outages for tests: nats-server killed and started again, or frozen, under its clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servers import NatsServer


def restart_nats(server: NatsServer) -> None:
    """kill -9, then start it again on the same port with the same JetStream store."""
    server.kill()
    port = server.url.rsplit(":", 1)[1]
    argv = [port if previous == "-p" else arg
            for previous, arg in zip(["", *server.argv[:-1]], server.argv, strict=True)]
    log = server.store_dir.parent / "nats-server.log"
    with open(log, "ab") as output:
        server.process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(port))) == 0:
                return
        assert server.process.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "nats-server did not come back"
        time.sleep(0.02)


@contextmanager
def frozen(server: NatsServer) -> Iterator[None]:
    """SIGSTOP: connections stay open and nothing answers, until the block ends (SIGCONT)."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)
