"""The Kubernetes manifests start real modules with the variables the code reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
SOURCE = "\n".join(p.read_text() for folder in ("services", "shared")
                   for p in (ROOT / folder).rglob("*.py"))


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found = []
    for resource in kustomization["resources"]:
        found += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    return found


def test_every_deployment_runs_a_module_that_exists_with_probes_on_its_port() -> None:
    deployments = [d for d in documents() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "tutorpulse-command", "tutorpulse-relay", "tutorpulse-projections",
        "tutorpulse-live-gateway", "tutorpulse-query"}
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        module = container["command"][-1]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        env = {e["name"]: e["value"] for e in container["env"]}
        port = container["ports"][0]["containerPort"]
        assert [v for k, v in env.items() if k.endswith("_PORT")] == [str(port)]
        for name in env:
            assert name in SOURCE, f"{name} is read nowhere"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_configuration_only_sets_variables_the_code_reads() -> None:
    (config,) = [d for d in documents() if d["kind"] == "ConfigMap"]
    for name in config["data"]:
        assert name in SOURCE, f"{name} is read nowhere"
    assert config["data"]["TUTORPULSE_STORE"] == "postgres"


def test_services_and_autoscalers_point_at_deployments() -> None:
    names = {d["metadata"]["name"] for d in documents() if d["kind"] == "Deployment"}
    for document in documents():
        if document["kind"] == "HorizontalPodAutoscaler":
            assert document["spec"]["scaleTargetRef"]["name"] in names
        if document["kind"] in ("Service", "PodDisruptionBudget"):
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert selector["app.kubernetes.io/name"] in names
