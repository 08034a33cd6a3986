"""A service (relay, projections, gateway) run as its own process, as ``make run`` and
Kubernetes run it, probed over HTTP the way a probe would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    module: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    last: dict[str, Any] = field(default_factory=dict)
    """The last ``/ready`` body seen."""

    def start(self) -> ServiceProcess:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env,
                                            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None and self.process.poll() is None, \
            f"{self.module} exited\n{self.output()[-3000:]}"
        return self.process

    async def get(self, path: str) -> httpx.Response | None:
        """The answer, or None while nothing listens yet."""
        self.running()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(f"http://127.0.0.1:{self.port}{path}")
        except httpx.TransportError:
            return None

    async def until_ready_is(self, status: int, timeout: float = 30) -> dict[str, Any]:
        """Wait until ``/ready`` answers ``status``; its body."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.get("/ready")
            if response is not None:
                self.last = response.json()
                if response.status_code == status:
                    return self.last
            assert time.monotonic() < deadline, \
                f"/ready never answered {status}; last {self.last}\n{self.output()[-3000:]}"
            await asyncio.sleep(0.05)

    async def health(self) -> int:
        response = await self.get("/health")
        assert response is not None, "/health does not answer"
        return response.status_code

    def terminate(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took to exit."""
        process = self.running()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"{self.module} ignored SIGTERM for {timeout} s\n"
                                 f"{self.output()[-3000:]}") from None
        return code, time.monotonic() - started

    def stop(self) -> None:
        """Whatever state it is in: gone afterwards."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def service_env(**settings: str) -> dict[str, str]:
    """The tests' environment (token secret, limits) with a service's own settings, as JSON logs
    (so tests can count log lines)."""
    return {**os.environ, "TUTORPULSE_LOG_FORMAT": "json", "TUTORPULSE_LOG_LEVEL": "INFO",
            **settings}
