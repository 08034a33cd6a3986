"""The cluster as separate processes, each of which a test can kill -9 and start again.

Every service runs as ``python -m services.<name>`` with its own port, its log in a file, and
the environment a deployment would give it (PostgreSQL event and read stores, nats-server).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import free_port


@dataclass
class ServiceProcess:
    """One replica of a service: started, killed and started again under the same name."""

    name: str
    module: str
    port_variable: str
    env: Mapping[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        env = {**self.env, self.port_variable: str(self.port)}
        with open(self.logs / f"{self.name}.log", "ab") as output:
            output.write(f"--- start {self.starts} ---\n".encode())
            output.flush()
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=env,
                                            stdout=output, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, in-flight work is simply gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def exited_by_itself(self) -> int | None:
        """The exit code if the process ended without being told to."""
        return None if self.process is None else self.process.poll()

    def log_tail(self, limit: int = 3000) -> str:
        path = self.logs / f"{self.name}.log"
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    async def ready(self, client: httpx.AsyncClient) -> bool:
        try:
            response = await client.get(f"{self.url}/ready", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def metric(self, client: httpx.AsyncClient, name: str) -> float | None:
        """One sample of a Prometheus metric this replica exports (None if unreachable)."""
        try:
            response = await client.get(f"{self.url}/metrics", timeout=2.0)
        except httpx.HTTPError:
            return None
        for line in response.text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return None


async def until(condition, what: str, timeout: float = 90.0, every: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Wait for an async condition; returns the seconds it took. ``timeout`` only bounds a
    failure (a hung cluster), it never decides success."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


def child_environment(base: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, "TUTORPULSE_LOG_LEVEL": "WARNING", "TUTORPULSE_LOG_FORMAT": "json",
            **base}
