"""Yes/no settings read one way everywhere: a typo stops a service at start, naming the
setting, instead of silently meaning "no"."""

from __future__ import annotations

import pytest

from shared.eventstore import EventStoreSettings
from shared.eventstore.store import store_env
from shared.settings import SettingsError, flag, load
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import token_settings


@pytest.mark.parametrize("value", ["1", "y", "Yes", " TRUE ", "t", "on"])
def test_yes(value: str) -> None:
    assert flag(value, name="X") is True


@pytest.mark.parametrize("value", ["0", "n", "No", "false", "F", "off "])
def test_no(value: str) -> None:
    assert flag(value, name="X", default=True) is False


def test_unset_or_blank_is_the_default() -> None:
    assert flag(None, name="X") is False
    assert flag("  ", name="X", default=True) is True


@pytest.mark.parametrize("value", ["maybe", "2", "yess", "enabled"])
def test_anything_else_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="TUTORPULSE_SOMETHING must be yes or no"):
        flag(value, name="TUTORPULSE_SOMETHING")


def test_the_services_settings_use_it() -> None:
    postgres = {"TUTORPULSE_STORE": "postgres", "TUTORPULSE_POSTGRES_PASSWORD": "x"}

    def pre_ping(value: str) -> str:
        settings = load(EventStoreSettings, postgres | {"TUTORPULSE_POSTGRES_PRE_PING": value})
        return store_env(settings)["POSTGRES_PRE_PING"]

    assert pre_ping("Off") == "no"
    # Blank is the documented default (yes), not the library's reading of "" (no).
    assert pre_ping("") == "yes"
    assert token_settings(load(JwtSettings, {"TUTORPULSE_DEV_MODE": "yes"})).dev_mode
    assert not token_settings(
        load(JwtSettings, {"TUTORPULSE_DEV_MODE": "off", "TUTORPULSE_JWT_SECRET": "s" * 32})
    ).dev_mode
    with pytest.raises(SettingsError, match="TUTORPULSE_DEV_MODE must be yes or no"):
        load(JwtSettings, {"TUTORPULSE_DEV_MODE": "sure"})
