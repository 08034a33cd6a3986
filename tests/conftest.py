from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from shared.tenancy.tokens import forget_settings
from tests.support.identity import IdentityProvider, running_identity_provider
from tests.support.servers import PostgresServer, running_postgres

# Tests never sign with a production key, and never read one from the environment; they run
# as production does (no development mode, no identity provider unless a test sets one).
os.environ["TUTORPULSE_JWT_SECRET"] = "test-secret-for-tutorpulse-tests-only-0123456789"
os.environ["TUTORPULSE_BLOB_URL_KEY"] = "test-blob-url-key-for-tutorpulse-tests-only-0123456789"
os.environ["TUTORPULSE_PAPER_KEY"] = "test-paper-key-for-tutorpulse-tests-only-0123456789"
# 32 bytes in base64url: the master key that wraps every person's data key in tests.
os.environ["TUTORPULSE_PRIVACY_MASTER_KEYS"] = "test=dGVzdC1tYXN0ZXIta2V5LXR1dG9ycHVsc2UtMDAwMDE"
for _name in (
    "TUTORPULSE_DEV_MODE",
    "TUTORPULSE_JWT_JWKS_URL",
    "TUTORPULSE_JWT_ISSUER",
    "TUTORPULSE_JWT_AUDIENCE",
    "TUTORPULSE_NATS_USER",
    "TUTORPULSE_NATS_PASSWORD",
):
    os.environ.pop(_name, None)
# The rate limits are on (the middleware runs on every API test) but too high to throttle a
# test; tests of the limits themselves set their own.
os.environ["TUTORPULSE_RATE_LIMIT"] = "100000/second"
os.environ["TUTORPULSE_HELP_RATE_LIMIT"] = "100000/second"
os.environ.setdefault("TUTORPULSE_LOG_LEVEL", "WARNING")

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started only if a test needs it."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg(postgres: PostgresServer) -> PostgresServer:
    """A fresh, empty database for one test."""
    return postgres.fresh_database(f"t{next(_databases)}")


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    """An identity provider with its own keys and a JWKS on 127.0.0.1, for this test."""
    with running_identity_provider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _token_settings_of_this_test() -> Iterator[None]:
    """Services read the token settings when they start; a test that changes them (and builds
    an app) must not leave them to the next test."""
    yield
    forget_settings()
