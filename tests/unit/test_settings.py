"""Yes/no settings read one way everywhere: a typo stops a service at start, naming the
setting, instead of silently meaning "no"."""

from __future__ import annotations

import pytest

from shared.eventstore.store import store_env
from shared.settings import flag
from shared.tenancy.tokens import TokenConfigurationError, token_settings


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
    assert store_env(postgres | {"TUTORPULSE_POSTGRES_PRE_PING": "Off"})["POSTGRES_PRE_PING"] == "no"
    # Blank is the documented default (yes), not the library's reading of "" (no).
    assert store_env(postgres | {"TUTORPULSE_POSTGRES_PRE_PING": ""})["POSTGRES_PRE_PING"] == "yes"
    assert token_settings({"TUTORPULSE_DEV_MODE": "yes"}).dev_mode
    assert not token_settings({"TUTORPULSE_DEV_MODE": "off", "TUTORPULSE_JWT_SECRET": "s" * 32}).dev_mode
    with pytest.raises(TokenConfigurationError, match="TUTORPULSE_DEV_MODE must be yes or no"):
        token_settings({"TUTORPULSE_DEV_MODE": "sure"})
