"""The Kubernetes manifests start real modules with the variables the code reads, in every
overlay of ``infra/k8s`` as kustomize renders it."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from services.settings import PROGRAMS, variables
from shared.messaging import StreamSettings, stream_definitions
from shared.messaging.auth import PERMISSIONS
from shared.settings import declared, load
from tests.support.k8s import OVERLAYS, PROGRAM_OF, rendered, unhashed

pytestmark = pytest.mark.parametrize("overlay", OVERLAYS)


def read_by(program: str) -> set[str]:
    """The variables ``program`` reads: those it declares, and those they fall back to (the
    read store's ``TUTORPULSE_READ_POSTGRES_USER`` is ``TUTORPULSE_POSTGRES_USER`` unless set)."""
    found = set()
    for _, variable in declared(PROGRAMS[program]):
        found |= {variable.name} | ({variable.fallback} if variable.fallback else set())
    return found


def documents(overlay: str) -> list[dict[str, Any]]:
    return list(rendered(overlay))


def test_every_deployment_runs_a_module_that_exists_with_probes_on_its_port(overlay: str) -> None:
    deployments = [d for d in documents(overlay) if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "tutorpulse-command",
        "tutorpulse-relay",
        "tutorpulse-projections",
        "tutorpulse-live-gateway",
        "tutorpulse-query",
        "tutorpulse-notifier",
        "tutorpulse-scheduler",
    }
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        module = container["command"][-1]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = container["ports"][0]["containerPort"]
        assert [v for k, v in env.items() if k.endswith("_PORT")] == [str(port)]
        for name in env:
            assert name in read_by(PROGRAM_OF[module]), f"{module} does not read {name}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_configuration_only_sets_variables_the_code_reads(overlay: str) -> None:
    (config,) = [
        d
        for d in documents(overlay)
        if d["kind"] == "ConfigMap" and unhashed(d["metadata"]["name"]) == "tutorpulse-config"
    ]
    for name in config["data"]:
        assert name in variables(), f"{name} is read nowhere"
    data = config["data"]
    for settings in PROGRAMS.values():  # every value is one its programs can use
        load(settings, data)
    assert data["TUTORPULSE_STORE"] == "postgres"
    # Streams are created with three replicas on the platform's NATS cluster.
    assert data["TUTORPULSE_NATS_REPLICAS"] == "3"
    stream_definitions(settings=load(StreamSettings, data))
    assert "TUTORPULSE_DEV_MODE" not in data and "TUTORPULSE_JWT_SECRET" not in data


def test_each_service_that_uses_nats_logs_in_as_its_own_user_from_a_secret(overlay: str) -> None:
    users: dict[str, str | None] = {}
    for deployment in (d for d in documents(overlay) if d["kind"] == "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        name = deployment["metadata"]["name"]
        if "TUTORPULSE_NATS_USER" not in env:
            users[name] = None
            continue
        user = env["TUTORPULSE_NATS_USER"]["value"]
        secret = env["TUTORPULSE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "tutorpulse-nats", "key": user}
        users[name] = user
    assert users == {
        "tutorpulse-relay": "relay",
        "tutorpulse-projections": "projections",
        "tutorpulse-live-gateway": "gateway",
        "tutorpulse-command": None,
        "tutorpulse-query": None,
        "tutorpulse-notifier": "notifier",
        "tutorpulse-scheduler": "scheduler",
    }
    assert set(users.values()) - {None} <= set(PERMISSIONS)


def test_services_and_autoscalers_point_at_workloads(overlay: str) -> None:
    names = {
        d["metadata"]["name"]
        for d in documents(overlay)
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    for document in documents(overlay):
        if document["kind"] == "HorizontalPodAutoscaler":
            assert document["spec"]["scaleTargetRef"]["name"] in names
        if document["kind"] in ("Service", "PodDisruptionBudget"):
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert selector["app.kubernetes.io/name"] in names


def test_every_deployment_has_a_disruption_budget_and_the_scheduler_runs_replicas(
    overlay: str,
) -> None:
    """A node drain never takes every replica of a service at once; the scheduler's replicas
    share its durable consumers, so one may go while the other fires timers."""
    deployments = {
        d["metadata"]["name"]: d for d in documents(overlay) if d["kind"] == "Deployment"
    }
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: d["spec"]
        for d in documents(overlay)
        if d["kind"] == "PodDisruptionBudget"
    }
    servers = {d["metadata"]["name"] for d in documents(overlay) if d["kind"] == "StatefulSet"}
    assert set(budgets) == set(deployments) | servers
    scheduler = deployments["tutorpulse-scheduler"]
    if overlay == "production":
        assert scheduler["spec"]["replicas"] >= 2
        assert budgets["tutorpulse-scheduler"]["minAvailable"] == 1
    # Streams at three replicas survive one server going at a time, and no more.
    assert budgets["tutorpulse-nats"]["maxUnavailable"] == 1
    (container,) = scheduler["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TUTORPULSE_SCHEDULER_PORT"] == "8015"
    assert "TUTORPULSE_SCHEDULER_CLOCK_RATE" not in env  # the wall clock's rate in production
    sources = {unhashed(next(iter(s.values()))["name"]) for s in container["envFrom"]}
    assert sources == {"tutorpulse-config", "tutorpulse-secrets"}  # the event store's settings
