"""Every service that seals or opens personal texts, as deployed: the master keys from the
secret, the event store's database (where the key table is) by its settings, its role and a
NetworkPolicy that lets it through."""

from __future__ import annotations

import pytest

from services.settings import programs_reading
from tests.support.k8s import OVERLAYS, of_kind, pod_templates, unhashed
from tests.unit.test_k8s_policy import DB_CLIENTS, containers, program_of, secret_template

MASTER_KEYS = "TUTORPULSE_PRIVACY_MASTER_KEYS"
SECRET = "tutorpulse-secrets"


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_secret_template_has_the_master_keys() -> None:
    assert MASTER_KEYS in secret_template()[SECRET]


def test_every_service_opening_a_key_store_gets_the_master_keys_and_the_database(
    overlay: str,
) -> None:
    readers = set(programs_reading(MASTER_KEYS))
    assert {"live_gateway", "notifier", "query", "scheduler"} <= readers
    deployed: set[str] = set()
    for name, template in pod_templates(overlay).items():
        for container in containers(template):
            program = program_of(container)
            if program not in readers or not name.startswith("Deployment/"):
                continue
            deployed.add(program)
            mounted = {
                unhashed((source.get("secretRef") or source["configMapRef"])["name"])
                for source in container.get("envFrom", [])
            }
            assert {SECRET, "tutorpulse-config"} <= mounted, name
            env = {variable["name"] for variable in container.get("env", [])}
            assert {"TUTORPULSE_POSTGRES_USER", "TUTORPULSE_POSTGRES_PASSWORD"} <= env, name
            assert name.removeprefix("Deployment/tutorpulse-") in DB_CLIENTS, name
    assert {"live_gateway", "notifier", "query", "scheduler"} <= deployed


def test_the_production_secret_is_made_with_every_key_of_the_app_secret() -> None:
    (made,) = [
        d for d in of_kind("production", "ExternalSecret") if d["spec"]["target"]["name"] == SECRET
    ]
    assert [source["extract"]["key"] for source in made["spec"]["dataFrom"]] == [
        "tutorpulse/production/app"
    ]
