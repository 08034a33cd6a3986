"""Every object of every overlay is valid, strictly (no field the API does not know), for the
oldest and the newest Kubernetes we support, as ``kubernetes-validate`` checks it against the
API's own OpenAPI schemas. Custom resources, whose schemas are their operators', are skipped by
kind, and only those."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no type information shipped
import pytest

from tests.support.k8s import OVERLAYS, rendered

KUBERNETES = ("1.33.0", "1.37.0")
"""The oldest and the newest minor version validated (the issue's two)."""

CUSTOM_RESOURCES = {
    ("postgresql.cnpg.io/v1", "Cluster"),  # CloudNativePG
    ("keda.sh/v1alpha1", "ScaledObject"),  # KEDA
    ("external-secrets.io/v1", "ExternalSecret"),  # External Secrets Operator
    ("monitoring.coreos.com/v1", "ServiceMonitor"),  # Prometheus Operator
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
"""Kinds no Kubernetes version's schema has: their operators' CRDs validate them at apply."""


def objects() -> list[Any]:
    return [
        pytest.param(overlay, document, id=f"{overlay}:{document['kind']}/{name}")
        for overlay in OVERLAYS
        for document in rendered(overlay)
        for name in [document["metadata"]["name"]]
    ]


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize(("overlay", "document"), objects())
def test_every_object_is_valid_strictly(
    overlay: str, document: dict[str, Any], version: str
) -> None:
    key = (document["apiVersion"], document["kind"])
    if key in CUSTOM_RESOURCES:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(document, version, strict=True)
        return
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{overlay}: {document['kind']}/{document['metadata']['name']}: {error}")


def test_only_custom_resources_are_skipped() -> None:
    """Everything else is a kind of Kubernetes itself (its group is empty or ends in k8s.io)."""
    for api_version, _ in CUSTOM_RESOURCES:
        group = api_version.rpartition("/")[0]
        assert group and not group.endswith("k8s.io"), api_version
    kinds = {(d["apiVersion"], d["kind"]) for overlay in OVERLAYS for d in rendered(overlay)}
    assert {("postgresql.cnpg.io/v1", "Cluster"), ("keda.sh/v1alpha1", "ScaledObject")} <= kinds
