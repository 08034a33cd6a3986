from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.support.servers import PostgresServer, running_postgres

# Tests never sign with a production key, and never read one from the environment.
os.environ["TUTORPULSE_JWT_SECRET"] = "test-secret-for-tutorpulse-tests-only-0123456789"
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
