"""A highly available tutorpulse on this machine, to break on purpose: ``make cluster``
(``python -m services.cluster_ha``).

On 127.0.0.1 it starts three nats-servers in one JetStream cluster (``infra/nats/cluster.conf``,
streams at three replicas), a PostgreSQL from Debian's server package (event store and read
models), creates the tables and streams (``python -m services.migrate``), seeds the demo centre,
then starts two replicas of every service: two relays (a leader and a standby, by the lease),
two each of the command API, the query API, the live gateway, the projections, the scheduler and
the notifier, each on its own port and given all three NATS URLs. Each gateway's tutor's page
(``/web/``) calls the command and query replicas of its number, which accept both gateways'
pages (CORS). Ports are consecutive from ``TUTORPULSE_CLUSTER_BASE_PORT`` (8100); the printout
says where everything listens (the tutor's page among it) and where
each process logs. A replica that dies is reported and left dead (the other one serves: that is
the point); Ctrl-C stops everything, newest first, and deletes the run's data (PostgreSQL's and
JetStream's), keeping the logs. ``tests/chaos/test_cluster_failover.py`` runs this cluster on
free ports and kills one NATS server and one replica of each service under load.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from services.cluster import ROOT, SERVICES, VAR, Service
from services.live_gateway.settings import WebSettings
from services.local_binaries import nats_server_binary, postgres_bin_dir
from services.notifier.settings import DeliverySettings
from services.settings import PROGRAMS, HaClusterSettings, load_or_exit
from shared.eventstore.settings import EventStoreSettings
from shared.http.cors.settings import CorsSettings
from shared.messaging.auth import (
    PERMISSIONS,
    RELAY,
    SERVICE_USERS,
    Permissions,
    generate_credentials,
    write_credentials_file,
    write_server_config,
)
from shared.messaging.nats import LOCAL_CREDENTIALS
from shared.messaging.settings import Credentials, NatsSettings, StreamSettings, credentials_env
from shared.observability.settings import LogSettings
from shared.readmodels.store.settings import ReadStoreSettings
from shared.settings import variable_name
from shared.tenancy.settings import JwtSettings

REPLICAS = 2
NATS_SERVERS = 3
DATABASE = "tutorpulse"


@dataclass(frozen=True)
class NatsNode:
    name: str
    client: int
    route: int
    monitor: int

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client}"


@dataclass(frozen=True)
class Layout:
    """Where everything listens."""

    services: dict[str, tuple[int, ...]]
    """Each program of :data:`SERVICES`: its replicas' ports."""
    postgres: int
    nats: tuple[NatsNode, ...]

    @classmethod
    def from_base(cls, base: int) -> Layout:
        """Services from ``base`` (two ports each), PostgreSQL at ``base + 20``, the NATS
        servers' client ports from ``base + 30``, routes from ``+ 33``, monitoring from ``+ 36``."""
        services = {
            service.program: tuple(base + REPLICAS * i + r for r in range(REPLICAS))
            for i, service in enumerate(SERVICES)
        }
        nodes = tuple(
            NatsNode(f"tutorpulse-nats-{n}", base + 30 + n, base + 33 + n, base + 36 + n)
            for n in range(NATS_SERVERS)
        )
        return cls(services, base + 20, nodes)

    @classmethod
    def free(cls) -> Layout:
        """Ports the system has free now (for tests, which must not take the fixed ones)."""
        ports = iter(free_ports(len(SERVICES) * REPLICAS + 1 + 3 * NATS_SERVERS))
        services = {
            service.program: tuple(next(ports) for _ in range(REPLICAS)) for service in SERVICES
        }
        postgres = next(ports)
        nodes = tuple(
            NatsNode(f"tutorpulse-nats-{n}", next(ports), next(ports), next(ports))
            for n in range(NATS_SERVERS)
        )
        return cls(services, postgres, nodes)

    @property
    def nats_urls(self) -> str:
        return ",".join(node.url for node in self.nats)

    def url(self, program: str, number: int) -> str:
        """The address of replica ``number`` (from 1) of ``program``."""
        return f"http://127.0.0.1:{self.services[program][number - 1]}"

    def gateway_origins(self) -> tuple[str, ...]:
        """Every origin a gateway serves the tutor's page from (by address and by name)."""
        return tuple(
            f"http://{host}:{port}"
            for port in self.services["live_gateway"]
            for host in ("127.0.0.1", "localhost")
        )

    def page_settings(self, program: str, number: int) -> dict[str, str]:
        """The settings that make the tutor's page work across the cluster's ports: gateway
        ``number``'s page calls command and query replica ``number`` (the page's
        ``/web/config.json``), and every command and query replica answers the CORS requests
        of every gateway's page. Nothing for the other programs."""
        if program == "live_gateway":
            return {
                variable_name(WebSettings, "command_url"): self.url("command", number),
                variable_name(WebSettings, "query_url"): self.url("query", number),
            }
        if program in ("command", "query"):
            return {variable_name(CorsSettings, "origins"): ",".join(self.gateway_origins())}
        return {}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@dataclass
class Process:
    """One process of the cluster, logging to its own file; killed and started again by name."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as output:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """kill -9: nothing of it runs any more, its work in flight is gone."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, limit: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-limit:] if self.log.exists() else ""


@dataclass
class Postgres:
    """A PostgreSQL server of Debian's server package in ``home``, for this run only."""

    home: Path
    port: int
    bindir: Path = field(default_factory=lambda: postgres_bin_dir())

    @property
    def prefix(self) -> list[str]:
        """As root, PostgreSQL's own programs run as the ``postgres`` user (it refuses root)."""
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def data(self) -> Path:
        return self.home / "data"

    def env(self) -> dict[str, str]:
        """The event store's settings, which the read store falls back to."""
        events = {
            "store": "postgres",
            "postgres_host": "127.0.0.1",
            "postgres_port": str(self.port),
            "postgres_user": "postgres",
            "postgres_password": "",
            "postgres_dbname": DATABASE,
        }
        return {
            **{variable_name(EventStoreSettings, name): value for name, value in events.items()},
            variable_name(ReadStoreSettings, "store"): "postgres",
        }

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.home, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.home / "postgres.log"),
            "-w",
            "-t",
            "30",
            "-o",
            # A throwaway cluster, deleted when it stops: no need to survive a power cut.
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.data}"
            " -c max_connections=300 -c fsync=off -c synchronous_commit=off",
            "start",
        )
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.prefix, str(self.bindir / program), *args],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            log = self.home / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr.decode(errors='replace')}{tail}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self.prefix,
                    str(self.bindir / "pg_ctl"),
                    *("-D", str(self.data)),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


@dataclass
class Replica:
    """One replica of a service: which service, which of its replicas, its process."""

    service: Service
    number: int
    process: Process

    @property
    def name(self) -> str:
        return self.process.name


@dataclass
class HaCluster:
    home: Path
    """This run's ``nats/`` (the JetStream stores) and ``logs/`` (PostgreSQL's data is in a
    temporary directory of its own)."""
    layout: Layout
    seed_demo: bool = True
    extra_users: Mapping[str, Permissions] = field(default_factory=dict)
    """NATS users beside the services' (a test's harness), with their permissions."""
    log_format: str = "console"
    credentials: dict[str, Credentials] = field(default_factory=dict)
    nats: list[Process] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    postgres: Postgres | None = None

    # --- the parts ---------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """What every tutorpulse process of the cluster gets (each service adds its user)."""
        assert self.postgres is not None
        own_user = (variable_name(NatsSettings, "user"), variable_name(NatsSettings, "password"))
        inherited = {k: v for k, v in os.environ.items() if k not in own_user}
        return {
            variable_name(JwtSettings, "dev_mode"): "1",
            variable_name(LogSettings, "format"): self.log_format,
            variable_name(DeliverySettings, "private_webhooks"): "1",
            **inherited,
            **self.postgres.env(),
            variable_name(NatsSettings, "url"): self.layout.nats_urls,
            variable_name(StreamSettings, "replicas"): str(NATS_SERVERS),
            **(extra or {}),
        }

    def start_postgres(self) -> None:
        # Its own directory in the system's temporary place, which the ``postgres`` user (as
        # whom the server runs when started as root) can reach whatever the run's home is.
        home = Path(tempfile.mkdtemp(prefix="tutorpulse-cluster-pg-"))
        self.postgres = Postgres(home, self.layout.postgres)
        self.postgres.start()

    def start_nats(self) -> None:
        users = {**PERMISSIONS, **self.extra_users}
        self.credentials = generate_credentials([*SERVICE_USERS, *self.extra_users])
        routes = ",".join(f"nats://127.0.0.1:{node.route}" for node in self.layout.nats)
        for node in self.layout.nats:
            workdir = self.home / "nats" / node.name
            workdir.mkdir(parents=True, exist_ok=True)
            config = write_server_config(
                workdir / "server.conf",
                ROOT / "infra" / "nats" / "cluster.conf",
                self.credentials,
                users,
            )
            argv = [nats_server_binary(), "-c", str(config), "-n", node.name, "-a", "127.0.0.1"]
            argv += ["-p", str(node.client), "-m", str(node.monitor)]
            argv += ["-sd", str(workdir / "jetstream")]
            argv += ["--cluster", f"nats://127.0.0.1:{node.route}", "--routes", routes]
            process = Process(
                node.name,
                argv,
                {"PATH": os.environ.get("PATH", "")},
                self.home / "logs" / f"{node.name}.log",
                node.client,
            )
            self.nats.append(process.start())
        for node, process in zip(self.layout.nats, self.nats, strict=True):
            until_true(lambda n=node: nats_healthy(n), f"{node.name} healthy", process)

    def run_once(self, what: str, *argv: str, nats_user: str | None = None) -> None:
        env = self.env()
        if nats_user is not None:
            env |= credentials_env(self.credentials[nats_user])
        log = self.home / "logs" / f"{what}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as output:
            done = subprocess.run(
                [sys.executable, *argv], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        if done.returncode != 0:
            raise RuntimeError(
                f"{what} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}"
            )

    def start_services(self) -> None:
        for service in SERVICES:
            port_variable = variable_name(PROGRAMS[service.program], "port")
            for number, port in enumerate(self.layout.services[service.program], start=1):
                env = self.env(
                    {port_variable: str(port), **self.layout.page_settings(service.program, number)}
                )
                if service.nats_user is not None:
                    env |= credentials_env(self.credentials[service.nats_user])
                slug = service.module.rsplit(".", 1)[1].replace("_", "-")
                process = Process(
                    f"{slug}-{number}",
                    [sys.executable, "-m", service.module],
                    env,
                    self.home / "logs" / f"{slug}-{number}.log",
                    port,
                )
                self.replicas.append(Replica(service, number, process.start()))
        for replica in self.replicas:
            until_true(
                lambda r=replica: ready(r.process), f"{replica.name} ready", replica.process, 120
            )

    def start(self) -> None:
        for service in SERVICES:  # a setting no service could use stops it before anything runs
            load_or_exit(PROGRAMS[service.program], service.program)
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True)
        self.start_postgres()
        self.start_nats()
        self.run_once("migrate-tables", "-m", "services.migrate", "tables")
        self.run_once("migrate-streams", "-m", "services.migrate", "streams", nats_user=RELAY)
        if self.seed_demo:
            self.run_once("seed", "-m", "services.command.seed")
        self.start_services()

    # --- looking at it ---------------------------------------------------------------

    def replicas_of(self, program: str) -> list[Replica]:
        return [r for r in self.replicas if r.service.program == program]

    def processes(self) -> Iterator[Process]:
        yield from self.nats
        yield from (replica.process for replica in self.replicas)

    def banner(self) -> str:
        assert self.postgres is not None
        lines = ["", "tutorpulse (highly available) is running (Ctrl-C stops everything)"]
        for service in SERVICES:
            for replica in self.replicas_of(service.program):
                port = replica.process.port
                lines.append(f"  {replica.name:<15} {service.urls.format(port=port)}")
        for node in self.layout.nats:
            lines.append(
                f"  {node.name:<15} {node.url}  routes :{node.route}"
                f"  monitoring http://127.0.0.1:{node.monitor}/healthz"
            )
        pages = "  or  ".join(
            f"{self.layout.url('live_gateway', n)}/web/" for n in range(1, REPLICAS + 1)
        )
        lines += [
            f"  {'tutor page':<15} {pages}   (gateway n's page calls command-n, query-n)",
            f"  {'tokens':<15} .venv/bin/tp-token john   (sign in to the page with one)",
            f"  {'PostgreSQL':<15} postgresql://postgres@127.0.0.1:{self.layout.postgres}/"
            f"{DATABASE}   (event store and read models)",
            f"  {'NATS URLs':<15} {self.layout.nats_urls}   (streams at {NATS_SERVERS} replicas;"
            f" users of this run in {self._credentials_place()})",
            f"  {'logs':<15} {self.home / 'logs'}/<name>.log",
            f"  {'break it':<15} kill -9 one of: "
            + ", ".join(f"{p.name}={p.popen.pid}" for p in self.processes() if p.popen),
            "",
        ]
        return "\n".join(lines)

    def _credentials_place(self) -> str:
        try:
            return str(LOCAL_CREDENTIALS.relative_to(ROOT)) + "/"
        except ValueError:
            return str(LOCAL_CREDENTIALS)

    def write_operator_credentials(self) -> None:
        """Each user's credentials where the operators' CLIs look (``tail`` as ``ops``)."""
        for user, credentials in self.credentials.items():
            write_credentials_file(LOCAL_CREDENTIALS / f"{user}.json", credentials)

    # --- stopping --------------------------------------------------------------------

    def stop(self, keep_logs: bool = True) -> None:
        stop_together([replica.process for replica in reversed(self.replicas)])
        stop_together(self.nats)
        if self.postgres is not None:
            self.postgres.stop()
            shutil.rmtree(self.postgres.home, ignore_errors=True)
        shutil.rmtree(self.home / "nats", ignore_errors=True)
        if not keep_logs:
            shutil.rmtree(self.home, ignore_errors=True)

    def supervise(self) -> int:
        stop = {"requested": False}

        def request_stop(signum: int, frame: object) -> None:
            stop["requested"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        told: set[str] = set()
        while not stop["requested"]:
            for process in self.processes():
                if process.name not in told and not process.alive and process.popen is not None:
                    told.add(process.name)
                    print(
                        f"{process.name} exited with {process.popen.returncode}; the cluster "
                        f"carries on without it (log: {process.log})",
                        file=sys.stderr,
                        flush=True,
                    )
            time.sleep(0.2)
        return 0


def stop_together(processes: list[Process], timeout: float = 10.0) -> None:
    """SIGTERM to each at once, then wait for all (a kill -9 for any still there after
    ``timeout``)."""
    for process in processes:
        if process.alive and process.popen is not None:
            process.popen.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        if process.popen is not None:
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def nats_healthy(node: NatsNode) -> bool:
    """JetStream up and current (``/healthz`` of the monitoring port)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor}/healthz", timeout=1):
            return True
    except OSError:
        return False


def ready(process: Process) -> bool:
    try:
        with urllib.request.urlopen(f"{process.url}/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def until_true(
    condition: Any, what: str, process: Process | None = None, timeout: float = 60.0
) -> None:
    """Wait for ``condition()``; ``timeout`` only bounds a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and not process.alive:
            raise RuntimeError(f"{what}: {process.name} exited\n{process.tail()}")
        if time.monotonic() > deadline:
            tail = process.tail() if process is not None else ""
            raise RuntimeError(f"{what}: not within {timeout:.0f} s\n{tail}")
        time.sleep(0.1)


def main() -> int:
    settings = load_or_exit(HaClusterSettings, "make cluster")
    cluster = HaCluster(VAR / "cluster", Layout.from_base(settings.base_port))
    try:
        print("starting PostgreSQL, three NATS servers and two replicas of every service…")
        cluster.start()
        cluster.write_operator_credentials()
        print(cluster.banner(), flush=True)
        return cluster.supervise()
    finally:
        cluster.stop()
        print(f"tutorpulse stopped; logs kept in {cluster.home / 'logs'}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
