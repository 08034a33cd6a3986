"""The gateway serves the tutor's page: its files from the package, with a policy that runs
only its own scripts, and the page's settings (where the APIs are, where to sign in)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from litestar.testing import TestClient

from services.live_gateway.app import create_app
from services.live_gateway.page import WEB
from services.live_gateway.settings import GatewaySettings
from shared.readmodels.store import ReadStoreSettings, open_read_store
from shared.settings import load

UNREACHABLE_NATS = "nats://127.0.0.1:9"  # the page is served whatever NATS does


def client(tmp_path: Path, **variables: str) -> TestClient:  # type: ignore[type-arg]
    environment = {
        **os.environ,
        "TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite"),
        **variables,
    }
    store = open_read_store(load(ReadStoreSettings, environment))
    gateway = load(GatewaySettings, environment)
    return TestClient(create_app(store, UNREACHABLE_NATS, own_store=True, gateway=gateway))


def test_the_page_runs_only_its_own_files(tmp_path: Path) -> None:
    with client(tmp_path) as http:
        home = http.get("/", follow_redirects=False)
        page = http.get("/web/")
        script = http.get("/web/app.js")
    assert home.status_code in (301, 302, 307) and home.headers["location"] == "/web/"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy
    assert "connect-src 'self' http://127.0.0.1:8010 http://127.0.0.1:8014" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # No inline script or style anywhere: the policy would block it.
    for html in WEB.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, html
        assert " style=" not in text and "<style" not in text and " on" + "click=" not in text


def test_the_page_is_told_where_the_apis_are_and_where_to_sign_in(tmp_path: Path) -> None:
    with client(
        tmp_path,
        TUTORPULSE_WEB_COMMAND_URL="https://api.example.org/",
        TUTORPULSE_WEB_QUERY_URL="https://read.example.org",
        TUTORPULSE_WEB_LOGIN_URL="https://login.example.org/tutorpulse",
    ) as http:
        config = http.get("/web/config.json")
    assert config.json() == {
        "commandUrl": "https://api.example.org",
        "queryUrl": "https://read.example.org",
        "loginUrl": "https://login.example.org/tutorpulse",
        "devMode": False,
    }
    assert (
        "https://api.example.org https://read.example.org"
        in (config.headers["content-security-policy"])
    )
    assert config.headers["cache-control"] == "no-store"


def test_the_page_ships_with_the_package() -> None:
    assert {path.name for path in WEB.iterdir()} >= {
        "index.html",
        "app.js",
        "app.css",
        "live.js",
        "api.js",
        "dom.js",
    }
