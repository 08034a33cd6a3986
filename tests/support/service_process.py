"""A service run as its own process, as ``make run`` and Kubernetes run it, probed over HTTP the
way a probe would; killed with SIGKILL and started again under the same name by fault tests."""

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
    starts: int = 0

    @property
    def name(self) -> str:
        return self.log.stem

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServiceProcess:
        self.starts += 1
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as output:
            output.write(f"--- start {self.starts} ---\n".encode())
            output.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def exited_by_itself(self) -> int | None:
        """The exit code if the process has ended."""
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, in-flight work is simply gone."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    async def ready(self, client: httpx.AsyncClient) -> bool:
        try:
            response = await client.get(f"{self.url}/ready", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def metric(self, client: httpx.AsyncClient, name: str) -> float | None:
        """One sample of a Prometheus metric this process exports (None if unreachable)."""
        try:
            response = await client.get(f"{self.url}/metrics", timeout=2.0)
        except httpx.HTTPError:
            return None
        for line in response.text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None and self.process.poll() is None, (
            f"{self.module} exited\n{self.output()[-3000:]}"
        )
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
            assert time.monotonic() < deadline, (
                f"/ready never answered {status}; last {self.last}\n{self.output()[-3000:]}"
            )
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
            raise AssertionError(
                f"{self.module} ignored SIGTERM for {timeout} s\n{self.output()[-3000:]}"
            ) from None
        return code, time.monotonic() - started

    def stop(self) -> None:
        """Whatever state it is in: gone afterwards."""
        self.kill()


def service_env(**settings: str) -> dict[str, str]:
    """The tests' environment (token secret, limits) with a service's own settings, as JSON logs
    (so tests can count log lines)."""
    return {
        **os.environ,
        "TUTORPULSE_LOG_FORMAT": "json",
        "TUTORPULSE_LOG_LEVEL": "INFO",
        **settings,
    }


def run_module(
    module: str, *arguments: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m module arguments`` run to its end from the checkout, with ``env`` and only
    the system's PATH (none of the tests' own environment), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
