"""Real PostgreSQL and nats-server processes on 127.0.0.1 for tests and benchmarks.

Both context managers always stop what they start, even when the body raises.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from services.local_binaries import nats_server_binary as nats_server_binary
from services.local_binaries import postgres_bin_dir as postgres_bin_dir
from shared.messaging.auth import (
    PERMISSIONS,
    SERVICE_USERS,
    Permissions,
    generate_credentials,
    write_server_config,
)
from shared.messaging.settings import Credentials, credentials_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(log: Path | None, limit: int = 2000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-limit:]


def _wait_for_port(
    port: int,
    timeout: float,
    what: str,
    log: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}\n{_tail(log)}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s\n{_tail(log)}")


# --- PostgreSQL ---------------------------------------------------------------------------


def suspend(pid: int) -> None:
    """SIGSTOP ``pid`` and return once it has stopped (state T in /proc). The signal is
    delivered asynchronously: a process still running for a moment answers what reaches it
    meanwhile (a ping sent right after the kill), which a freeze must not."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
        assert time.monotonic() < deadline, f"process {pid} did not stop"
        time.sleep(0.001)


@dataclass(frozen=True)
class PostgresControl:
    """Stops and starts the server process under the clients, for outage tests."""

    bindir: Path
    data: Path
    log: Path
    options: str
    prefix: tuple[str, ...]

    def stop(self, mode: str = "fast") -> None:
        _run_or_explain(
            [
                *self.prefix,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            "pg_ctl stop",
            self.log,
        )

    def start(self) -> None:
        _run_or_explain(
            [
                *self.prefix,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "30",
                "-o",
                self.options,
                "start",
            ],
            "pg_ctl start",
            self.log,
        )


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str
    password: str = ""
    control: PostgresControl | None = field(default=None, compare=False, repr=False)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (its clients see their connections drop); ``start()`` brings it back
        on the same port with the same data."""
        self._control().stop(mode)

    def start(self) -> None:
        self._control().start()

    def _control(self) -> PostgresControl:
        if self.control is None:
            raise RuntimeError("this server was not started by the tests")
        return self.control

    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    def env(self) -> dict[str, str]:
        """The tutorpulse variables that point the event store at this database."""
        return {
            "TUTORPULSE_STORE": "postgres",
            "TUTORPULSE_POSTGRES_HOST": self.host,
            "TUTORPULSE_POSTGRES_PORT": str(self.port),
            "TUTORPULSE_POSTGRES_USER": self.user,
            "TUTORPULSE_POSTGRES_PASSWORD": self.password,
            "TUTORPULSE_POSTGRES_DBNAME": self.dbname,
        }

    def fresh_database(self, name: str) -> PostgresServer:
        with psycopg.connect(replace(self, dbname="postgres").dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return replace(self, dbname=name)


def _run_or_explain(argv: list[str], what: str, log: Path | None) -> None:
    """Run a start-up step; on failure raise with its stderr and the server log's tail
    (the log lives in a directory that is removed on the way out)."""
    done = subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(
            f"{what} failed with exit code {done.returncode}\n{stderr}\n{_tail(log)}"
        )


@contextmanager
def running_postgres(workdir: Path | None = None) -> Iterator[PostgresServer]:
    bindir = postgres_bin_dir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    home = Path(tempfile.mkdtemp(prefix="tp-pg-"))
    data = home / "data"
    log = home / "postgres.log"
    port = free_port()
    try:
        if as_root:
            entry = pwd.getpwnam("postgres")
            os.chown(home, entry.pw_uid, entry.pw_gid)
        _run_or_explain(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            "initdb",
            None,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300"
        )
        control = PostgresControl(bindir, data, log, options, tuple(prefix))
        control.start()
        server = PostgresServer(
            host="127.0.0.1", port=port, user="postgres", dbname="tutorpulse", control=control
        )
        yield server.fresh_database("tutorpulse")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(home, ignore_errors=True)


# --- NATS ----------------------------------------------------------------------------------


HARNESS = "harness"
"""The tests' own NATS user, allowed everything: tests play the world around the service under
test (publishing change notices, reading streams, creating a scratch stream). Services log in
as their own users (:meth:`NatsServer.credentials_for`); only tests know this one."""
HARNESS_PERMISSIONS = Permissions(publish=(">",), subscribe=(">",))


@dataclass
class NatsServer:
    url: str
    """A client URL logged in as the tests' :data:`HARNESS` user."""
    process: subprocess.Popen[bytes]
    store_dir: Path
    address: str = ""
    """The bare ``nats://127.0.0.1:<port>``: connecting with it alone is anonymous (refused)."""
    credentials: dict[str, Credentials] = field(default_factory=dict)
    """Every user's credentials: the services' (``shared.messaging.auth``) and the harness."""
    argv: list[str] = field(default_factory=list)
    """The command line that started the server (with its configuration, users included)."""
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def credentials_for(self, user: str) -> Credentials:
        return self.credentials[user]

    def url_for(self, user: str) -> str:
        """A client URL that logs in as ``user`` (``relay``, ``projections``, ``gateway``,
        ``ops`` or the harness)."""
        who = self.credentials[user]
        return self.address.replace("nats://", f"nats://{who.user}:{who.password}@", 1)

    def env_for(self, user: str) -> dict[str, str]:
        """The environment a service process gets to reach this server as ``user``."""
        return {"TUTORPULSE_NATS_URL": self.address, **credentials_env(self.credentials[user])}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def start(self) -> None:
        """Start it again after ``kill()`` or ``stop()``: same port, same JetStream store, same
        users and passwords."""
        port = self.address.rsplit(":", 1)[1]
        argv = [
            port if arg == "-1" and previous == "-p" else arg
            for previous, arg in zip(["", *self.argv[:-1]], self.argv, strict=True)
        ]
        with open(self.log or os.devnull, "ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        _wait_for_port(int(port), 10, "nats-server", self.log, self.process)


@contextmanager
def running_nats(workdir: Path, config: Path | None = None) -> Iterator[NatsServer]:
    """nats-server with JetStream on a port it picks itself (``-p -1``), read back from its
    ports file, so no other process can take the port between choosing and binding it.

    Authorization is on, as in production: the services' users with their permissions
    (``shared.messaging.auth``) and fresh passwords, plus the tests' harness user."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "jetstream"
    log = workdir / "nats-server.log"
    credentials = generate_credentials([*SERVICE_USERS, HARNESS])
    base = config if config is not None else workdir / "base.conf"
    if config is None:
        base.write_text("")
    server_config = write_server_config(
        workdir / "server.conf", base, credentials, {**PERMISSIONS, HARNESS: HARNESS_PERMISSIONS}
    )
    argv = [
        nats_server_binary(),
        "-c",
        str(server_config),
        "-a",
        "127.0.0.1",
        "-p",
        "-1",
        "-js",
        "-sd",
        str(store),
        "--ports_file_dir",
        str(workdir),
    ]
    with open(log, "ab") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    server = NatsServer(
        url="", process=process, store_dir=store, credentials=credentials, argv=argv, log=log
    )
    try:
        server.address = _client_url(workdir / f"nats-server_{process.pid}.ports", process, log)
        server.url = server.url_for(HARNESS)
        _wait_for_port(int(server.address.rsplit(":", 1)[1]), 10, "nats-server", log, process)
        yield server
    finally:
        server.stop()


def _client_url(
    ports_file: Path, process: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}\n{_tail(log)}")
        try:
            urls = json.loads(ports_file.read_text())["nats"]
        except (OSError, ValueError, KeyError):  # not written yet, or half written
            urls = None
        if urls:
            return str(urls[0])
        time.sleep(0.02)
    raise RuntimeError(f"nats-server wrote no {ports_file.name} within {timeout}s\n{_tail(log)}")


# --- S3-compatible object store -----------------------------------------------------------


@dataclass
class S3Server:
    """moto's S3 server in this process, on 127.0.0.1: an S3-compatible store for the blob
    tests. Its objects live in moto's memory, so they outlive :meth:`stop` and :meth:`start`
    (an outage, not a wipe)."""

    port: int
    access_key: str = "tutorpulse-test"
    secret_key: str = "tutorpulse-test-secret"
    region: str = "us-east-1"
    _server: Any = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self, bucket: str) -> dict[str, str]:
        """The blob settings' environment for a store in ``bucket`` on this server."""
        return {
            "TUTORPULSE_BLOB_STORE": "s3",
            "TUTORPULSE_S3_ENDPOINT": self.endpoint,
            "TUTORPULSE_S3_BUCKET": bucket,
            "TUTORPULSE_S3_ACCESS_KEY": self.access_key,
            "TUTORPULSE_S3_SECRET_KEY": self.secret_key,
            "TUTORPULSE_S3_REGION": self.region,
            "TUTORPULSE_S3_SECURE": "no",
        }

    def start(self) -> None:
        """Serve (again) on the same port."""
        from moto.server import ThreadedMotoServer

        if self._server is not None:
            return
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        self.port = int(server.get_host_and_port()[1])
        _wait_for_port(self.port, 10, "moto S3 server")

    def stop(self) -> None:
        """Stop serving: connections to the port are refused until :meth:`start`."""
        if self._server is not None:
            self._server.stop()
            self._server = None


@contextmanager
def running_s3() -> Iterator[S3Server]:
    """An S3-compatible server (moto) on 127.0.0.1, on a port the system picks when it binds
    (kept across :meth:`S3Server.stop` and :meth:`S3Server.start`), stopped after."""
    server = S3Server(port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()
