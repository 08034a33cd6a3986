"""The command API with unsafe token settings does not start; with an identity provider it
takes the provider's tokens only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.http.app import create_app
from shared.tenancy.tokens import TokenConfigurationError, verifier
from tests.api.helpers import is_problem, session_body
from tests.builders import Centre
from tests.integration.cluster import serve
from tests.support.identity import IdentityProvider

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_secret_the_command_service_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TUTORPULSE_JWT_SECRET"}
    env |= {
        "TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite"),
        "TUTORPULSE_COMMAND_PORT": "0",
        "TUTORPULSE_LOG_FORMAT": "json",
    }
    started = subprocess.run(
        [sys.executable, "-m", "services.command"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert b"TUTORPULSE_JWT_SECRET is not set" in started.stdout + started.stderr


def test_a_short_secret_is_refused_when_the_app_is_built(
    centres: TutoringCentres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTORPULSE_JWT_SECRET", "too-short")
    with pytest.raises(TokenConfigurationError):
        create_app(centres, own_resources=False)


def test_with_an_identity_provider_only_its_tokens_are_accepted(
    centres: TutoringCentres,
    alpha: Centre,
    idp: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in idp.settings().items():
        monkeypatch.setenv(name, value)
    tutor = alpha["tutor"]
    token = idp.token({"sub": str(tutor.user_id), "role": "TEACHER", "centre": "alpha"})
    with TestClient(create_app(centres, own_resources=False)) as client:
        keys = verifier().jwks
        assert keys is not None and keys.wait_until_fetched(10)  # fetched in the background
        body = session_body(alpha)
        created = client.post(
            "/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201, created.text
        # A token minted with the shared secret is no longer good for anything.
        is_problem(client.post("/api/v1/sessions", json=body, headers=alpha.auth("tutor")), 401)

    monkeypatch.setenv("TUTORPULSE_JWT_JWKS_URL", "http://127.0.0.1:9/certs")  # the IdP is down
    unknown = idp.token({"sub": str(uuid4()), "role": "TEACHER", "centre": "alpha"})
    with TestClient(create_app(centres, own_resources=False)) as client:
        down = client.post(
            "/api/v1/sessions",
            json=session_body(alpha),
            headers={"Authorization": f"Bearer {unknown}"},
        )
        assert is_problem(down, 503)["title"] == "Service unavailable"
        assert down.headers["Retry-After"] == "5"


async def test_a_stalled_identity_provider_holds_up_no_request(
    centres: TutoringCentres,
    alpha: Centre,
    idp: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider's keys are fetched off the event loop: while its JWKS endpoint hangs, a
    request with its token answers 503 at once and probes answer as usual; once it answers,
    the same token works."""
    for name, value in idp.settings().items():
        monkeypatch.setenv(name, value)
    idp.stall()
    token = idp.token({"sub": str(alpha["tutor"].user_id), "role": "TEACHER", "centre": "alpha"})
    bearer = {"Authorization": f"Bearer {token}"}
    server, task, port = await serve(create_app(centres, own_resources=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(3):
                started = time.monotonic()
                command, health, ready = await asyncio.gather(
                    http.post("/api/v1/sessions", json=session_body(alpha), headers=bearer),
                    http.get("/health"),
                    http.get("/ready"),
                )
                took = time.monotonic() - started
                assert is_problem(command, 503)["title"] == "Service unavailable"
                assert command.headers["Retry-After"]
                assert (health.status_code, ready.status_code) == (200, 200)
                assert took < 1.5, f"answers took {took:.2f} s (the JWKS fetch waits 5 s)"
            idp.resume()
            deadline = time.monotonic() + 15
            while (
                created := await http.post(
                    "/api/v1/sessions", json=session_body(alpha), headers=bearer
                )
            ).status_code == 503:
                assert time.monotonic() < deadline, "the keys were never fetched"
                await asyncio.sleep(0.05)
            assert created.status_code == 201, created.text
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
