"""The command and query APIs answer cross-origin calls only from the origins allowed."""

from __future__ import annotations

import pytest

from shared.http.cors.settings import CorsSettings
from shared.settings import SettingsError, load


def test_development_mode_allows_the_gateways_own_page_and_production_nothing() -> None:
    settings = load(CorsSettings, {"TUTORPULSE_GATEWAY_PORT": "9013"})
    assert settings.allowed(dev_mode=True) == ("http://127.0.0.1:9013", "http://localhost:9013")
    assert settings.allowed(dev_mode=False) == ()


def test_named_origins_replace_the_default_in_either_mode() -> None:
    settings = load(
        CorsSettings, {"TUTORPULSE_CORS_ORIGINS": "https://tutor.example.org/, http://a:1"}
    )
    assert settings.allowed(dev_mode=False) == ("https://tutor.example.org", "http://a:1")
    assert settings.allowed(dev_mode=True) == ("https://tutor.example.org", "http://a:1")


@pytest.mark.parametrize("origin", ["*", "tutor.example.org", "https://a/path", "ftp://a"])
def test_an_origin_that_is_not_one_is_refused_by_the_variables_name(origin: str) -> None:
    with pytest.raises(SettingsError, match="TUTORPULSE_CORS_ORIGINS"):
        load(CorsSettings, {"TUTORPULSE_CORS_ORIGINS": origin})
