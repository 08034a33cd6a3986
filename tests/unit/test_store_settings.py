"""The event store's PostgreSQL settings reach the library and libpq, and a mistyped one is
refused at start naming the tutorpulse variable."""

from __future__ import annotations

import pytest

from shared.eventstore import EventStoreSettings
from shared.eventstore.postgres import PostgresFactory, libpq_parameters
from shared.eventstore.store import postgres_conninfo
from shared.eventstore.store import store_env as library_env
from shared.settings import load

POSTGRES = {"TUTORPULSE_STORE": "postgres", "TUTORPULSE_POSTGRES_PASSWORD": "x"}


def store_env(environ: dict[str, str]) -> dict[str, str]:
    """The library's variables for the tutorpulse variables ``environ``."""
    return library_env(load(EventStoreSettings, environ))


def test_defaults_fail_fast() -> None:
    env = store_env(POSTGRES)
    assert env["PERSISTENCE_MODULE"].endswith(":PostgresFactory")
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "3"  # the wait for a pooled connection
    assert env["POSTGRES_PRE_PING"] == "yes"
    parameters = libpq_parameters(env)
    assert parameters["connect_timeout"] == 3
    assert parameters["options"] == "-c statement_timeout=5000"
    assert parameters["keepalives"] == 1
    assert "connect_timeout=3" in postgres_conninfo(env)


def test_settings_are_passed_on() -> None:
    env = store_env(
        POSTGRES
        | {
            "TUTORPULSE_POSTGRES_CONNECT_TIMEOUT": "1",
            "TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT": "0.25",
            "TUTORPULSE_POSTGRES_PRE_PING": "no",
            "TUTORPULSE_POSTGRES_CONN_MAX_AGE": "60",
            "TUTORPULSE_POSTGRES_MAX_WAITING": "20",
        }
    )
    assert (
        env["POSTGRES_PRE_PING"],
        env["POSTGRES_CONN_MAX_AGE"],
        env["POSTGRES_MAX_WAITING"],
    ) == ("no", "60", "20")
    parameters = libpq_parameters(env)
    assert parameters["connect_timeout"] == 2  # libpq's least
    assert parameters["options"] == "-c statement_timeout=250"
    factory = PostgresFactory({k: v for k, v in env.items() if k != "PERSISTENCE_MODULE"})
    try:
        pool = factory.datastore.pool
        assert isinstance(pool.kwargs, dict)  # a dict, not the factory psycopg_pool also takes
        assert pool.kwargs["connect_timeout"] == 2
        assert pool.timeout == 1 and pool.max_waiting == 20 and pool.max_lifetime == 60
    finally:
        factory.close()


def test_statement_timeout_zero_leaves_the_servers_setting() -> None:
    env = store_env(POSTGRES | {"TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT": "0"})
    assert "options" not in libpq_parameters(env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUTORPULSE_POSTGRES_CONNECT_TIMEOUT", "soon"),
        ("TUTORPULSE_POSTGRES_CONNECT_TIMEOUT", "0"),
        ("TUTORPULSE_POSTGRES_STATEMENT_TIMEOUT", "-1"),
        ("TUTORPULSE_POSTGRES_PRE_PING", "maybe"),
        ("TUTORPULSE_POSTGRES_POOL_SIZE", "0"),
    ],
)
def test_a_mistyped_setting_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        store_env(POSTGRES | {variable: value})


def test_recorder_calls_make_one_attempt() -> None:
    recorder = PostgresFactory.application_recorder_class
    for name in ("insert_events", "select_notifications", "max_notification_id"):
        assert getattr(recorder, name).__code__.co_name != "retry_decorator", name


def test_the_answer_limit_reaches_the_factory_and_zero_turns_it_off() -> None:
    env = store_env(POSTGRES)
    assert env["POSTGRES_ANSWER_TIMEOUT"] == "6"
    assert libpq_parameters(env)["tcp_user_timeout"] == 11_000
    for value, limited in (("1.5", 1.5), ("0", None)):
        env = store_env(POSTGRES | {"TUTORPULSE_POSTGRES_ANSWER_TIMEOUT": value})
        factory = PostgresFactory({k: v for k, v in env.items() if k != "PERSISTENCE_MODULE"})
        try:
            limit = factory.answer_limit
            assert (limit.timeout if limit is not None else None) == limited
        finally:
            factory.close()
