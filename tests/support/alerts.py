"""The alerts of ``infra/k8s/components/monitoring`` and the runbook that documents them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
MONITORING = ROOT / "infra" / "k8s" / "components" / "monitoring"

ALERTS = frozenset(
    {
        "TutorpulseRelayLag",
        "TutorpulseRelayNoLeader",
        "TutorpulseProjectionLag",
        "TutorpulseDeadLetters",
        "TutorpulseHighErrorRatio",
        "TutorpulseReadinessFlapping",
        "TutorpulseJetStreamStorage",
        "TutorpulseServiceDown",
    }
)
"""The alerts issue 13 asks for, each with its section in docs/operations.md."""


def runbook() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def rules_of(documents: Iterable[Any]) -> list[dict[str, Any]]:
    """Every rule of every group of the PrometheusRules among ``documents``."""
    return [
        rule
        for document in documents
        if isinstance(document, dict) and document.get("kind") == "PrometheusRule"
        for group in document["spec"]["groups"]
        for rule in group["rules"]
    ]


def component_rules() -> list[dict[str, Any]]:
    """Every rule of the rule files under ``infra/k8s/components/monitoring`` as written
    (not rendered by an overlay)."""
    paths = sorted(MONITORING.rglob("*.yaml")) if MONITORING.is_dir() else []
    return rules_of(
        document
        for path in paths
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    )
