"""Three NATS servers in one JetStream cluster, configured two ways: as the Kubernetes manifests
configure them (the StatefulSet's ConfigMap, nats.conf and users.conf as the production overlay
renders them, with only the addresses changed: 127.0.0.1 and free ports instead of the pods'
DNS names and fixed ports), and as a local cluster on 127.0.0.1 (infra/nats/cluster.conf with
the run's users, the rest on the command line). Either way the cluster forms, logs the services
in as their own users, takes the streams at three replicas from the streams Job, and keeps
every acknowledged event when a server is killed: the client moves to another server (the
cluster tells it their addresses) and the stream elects a new leader."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from services.cluster_ha import free_ports
from services.local_binaries import nats_server_binary
from shared.messaging import connect
from shared.messaging.auth import EVENTS_STREAM, PERMISSIONS, write_server_config
from shared.messaging.settings import Credentials, server_password_variable
from tests.support.k8s import ROOT, of_kind

pytestmark = pytest.mark.integration
SERVERS = 3


@dataclass
class Server:
    name: str
    client: int
    cluster: int
    monitor: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client}"

    def healthy(self) -> bool:
        """JetStream up and current (the startup probe's ``/healthz``)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/healthz", timeout=1):
                return True
        except OSError:
            return False


def manifests_config() -> tuple[str, str, list[str]]:
    """nats.conf, users.conf and the StatefulSet's variable names, as production renders them."""
    (server,) = of_kind("production", "StatefulSet")
    pod = server["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    (files,) = [
        c["data"]
        for c in of_kind("production", "ConfigMap")
        if c["metadata"]["name"] == volume["configMap"]["name"]
    ]
    variables = [e["name"] for e in pod["containers"][0]["env"]]
    return files["nats.conf"], files["users.conf"], variables


def localised(config: str, me: Server, everyone: list[Server], workdir: Path) -> str:
    """The same configuration with local addresses: nothing but ports, hosts and paths."""
    routes = "\n".join(f"    nats://127.0.0.1:{s.cluster}" for s in everyone)
    changed, count = re.subn(r"routes: \[[^\]]*\]", f"routes: [\n{routes}\n  ]", config)
    assert count == 1
    replacements = {
        r"^port: 4222$": f"host: 127.0.0.1\nport: {me.client}",
        r"^http_port: 8222$": f"http: 127.0.0.1:{me.monitor}",
        r"^  port: 6222$": f"  host: 127.0.0.1\n  port: {me.cluster}",
        r"^pid_file: .*$": f"pid_file: {workdir / 'nats.pid'}",
        r"^  store_dir: .*$": f"  store_dir: {workdir / 'jetstream'}",
        r"^  max_file_store: .*$": "  max_file_store: 1GB",
    }
    for pattern, replacement in replacements.items():
        changed, count = re.subn(pattern, replacement, changed, flags=re.MULTILINE)
        assert count == 1, pattern
    return changed


def manifests_servers(tmp_path: Path, servers: list[Server], passwords: dict[str, str]) -> None:
    config, users, variables = manifests_config()
    for server in servers:
        workdir = tmp_path / server.name
        (workdir / "nats.conf").write_text(localised(config, server, servers, workdir))
        (workdir / "users.conf").write_text(users)
        env = {"PATH": os.environ.get("PATH", ""), "POD_NAME": server.name}
        env |= {server_password_variable(u): p for u, p in passwords.items()}
        assert set(variables) <= set(env)
        start(server, [nats_server_binary(), "--config", str(workdir / "nats.conf")], env, workdir)


def local_servers(tmp_path: Path, servers: list[Server], passwords: dict[str, str]) -> None:
    routes = ",".join(f"nats://127.0.0.1:{s.cluster}" for s in servers)
    credentials = {user: Credentials(user, password) for user, password in passwords.items()}
    for server in servers:
        workdir = tmp_path / server.name
        config = write_server_config(
            workdir / "server.conf", ROOT / "infra" / "nats" / "cluster.conf", credentials
        )
        argv = [nats_server_binary(), "-c", str(config), "-n", server.name, "-a", "127.0.0.1"]
        argv += ["-p", str(server.client), "-m", str(server.monitor)]
        argv += ["-sd", str(workdir / "jetstream")]
        argv += ["--cluster", f"nats://127.0.0.1:{server.cluster}", "--routes", routes]
        start(server, argv, {"PATH": os.environ.get("PATH", "")}, workdir)


def start(server: Server, argv: list[str], env: dict[str, str], workdir: Path) -> None:
    with open(workdir / "server.log", "ab") as log:
        server.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(params=["manifests", "local"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[list[Server], dict[str, str]]]:
    passwords = {user: f"{user}-password" for user in PERMISSIONS}
    ports = free_ports(3 * SERVERS)
    servers = [
        Server(
            f"tutorpulse-nats-{i}",
            client=ports[3 * i],
            cluster=ports[3 * i + 1],
            monitor=ports[3 * i + 2],
        )
        for i in range(SERVERS)
    ]
    for server in servers:
        (tmp_path / server.name).mkdir()
    try:
        if request.param == "manifests":
            manifests_servers(tmp_path, servers, passwords)
        else:
            local_servers(tmp_path, servers, passwords)
        yield servers, passwords
    finally:
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait()


def exited(servers: list[Server]) -> list[str]:
    """The servers whose process has ended (a cluster short of one never becomes healthy)."""
    return [s.name for s in servers if s.process is not None and s.process.poll() is not None]


async def until(condition: Callable[[], bool], what: str, attempts: int = 300) -> None:
    """Wait for ``condition()`` (looked at every 0.1 s, at most ``attempts`` times)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_the_manifests_nats_cluster_keeps_every_event_when_a_server_dies(
    cluster: tuple[list[Server], dict[str, str]],
) -> None:
    servers, passwords = cluster
    for server in servers:
        await until(lambda: server.healthy() or bool(exited(servers)), f"{server.name} up")  # noqa: B023
        assert not exited(servers), f"{exited(servers)} exited: see their server.log"

    job = subprocess.run(  # the streams Job, as the relay's user, at three replicas
        [sys.executable, "-m", "services.migrate", "streams"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "TUTORPULSE_NATS_URL": servers[0].url,
            "TUTORPULSE_NATS_USER": "relay",
            "TUTORPULSE_NATS_PASSWORD": passwords["relay"],
            "TUTORPULSE_NATS_REPLICAS": "3",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 0, job.stderr

    relay = await connect(
        servers[0].url, name="test-relay", credentials=Credentials("relay", passwords["relay"])
    )
    try:
        js = relay.jetstream()
        info = await js.stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2  # a leader and two followers

        async def publish(number: int) -> None:
            """Publish one event until JetStream acknowledges it (a server may be dying)."""
            for _ in range(100):
                try:
                    await js.publish(
                        f"tp.evt.alpha.session.{number}.SessionScheduled",
                        b"{}",
                        headers={"Nats-Msg-Id": f"tutorpulse:{number}"},
                        timeout=1,
                    )
                    return
                except (NatsError, JetStreamError, TimeoutError):
                    await asyncio.sleep(0.1)
            raise AssertionError(f"event {number} never acknowledged")

        for number in range(1, 201):
            await publish(number)
        leader = next(s for s in servers if s.name == info.cluster.leader)
        assert leader.process is not None
        leader.process.send_signal(signal.SIGKILL)  # the stream's leader, the harder case
        leader.process.wait()
        for number in range(201, 401):
            await publish(number)

        info = await js.stream_info(EVENTS_STREAM)
        assert info.state.messages == 400  # every acknowledged event, none twice
        assert info.cluster is not None and info.cluster.leader != leader.name
    finally:
        await relay.close()
