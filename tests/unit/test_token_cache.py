"""A token already verified is not checked again while it is valid: its expiry still refuses
it, a service whose secret changed refuses it, the identity provider withdrawing its key
refuses it (tests/unit/test_tokens.py), and the verifier remembers a bounded number."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest

from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy import tokens as tokens_module
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import InvalidToken, TokenVerifier, check_at_start, mint, verify

SECRET = "a-secret-of-more-than-thirty-two-bytes-0123456789"
ROTATED = "another-secret-of-more-than-thirty-two-bytes-98765"


def settings_with(secret: str) -> JwtSettings:
    return load(JwtSettings, {"TUTORPULSE_JWT_SECRET": secret})


def teacher() -> Actor:
    return Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")


@pytest.fixture
def signatures_checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token whose signature is checked."""
    checked: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return checked


def test_a_token_is_checked_once_and_then_known(signatures_checked: list[str]) -> None:
    check_at_start("test", settings_with(SECRET))
    who, other = teacher(), teacher()
    token, others = mint(who, key=SECRET), mint(other, key=SECRET)
    assert [verify(token) for _ in range(5)] == [who] * 5
    assert verify(others) == other
    assert signatures_checked == [token, others]


def test_a_forged_token_is_refused_every_time(signatures_checked: list[str]) -> None:
    check_at_start("test", settings_with(SECRET))
    forged = mint(teacher(), key=ROTATED)
    for _ in range(3):
        with pytest.raises(InvalidToken):
            verify(forged)
    assert signatures_checked == [forged] * 3


def test_an_expired_token_is_refused_although_it_was_verified() -> None:
    check_at_start("test", settings_with(SECRET))
    who = teacher()
    token = mint(who, key=SECRET, ttl=timedelta(seconds=1))
    assert verify(token) == who
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    while time.time() < expires:  # until the token's own expiry has passed
        time.sleep(0.05)
    with pytest.raises(InvalidToken, match="expired"):
        verify(token)


def test_a_service_whose_secret_changed_refuses_tokens_it_had_verified() -> None:
    check_at_start("test", settings_with(SECRET))
    token = mint(teacher(), key=SECRET)
    verify(token)
    check_at_start("test", settings_with(ROTATED))
    with pytest.raises(InvalidToken):
        verify(token)
    fresh = mint(teacher(), key=ROTATED)
    assert verify(fresh).role is Role.TEACHER


def test_the_tokens_remembered_are_bounded(
    monkeypatch: pytest.MonkeyPatch, signatures_checked: list[str]
) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS_KEPT", 3)
    tokens = TokenVerifier(tokens_module.token_settings(settings_with(SECRET)))
    minted = [mint(teacher(), key=SECRET) for _ in range(5)]
    for token in minted:
        tokens.verify(token)
    assert len(tokens._verified) == 3
    signatures_checked.clear()
    tokens.verify(minted[-1])  # still known
    tokens.verify(minted[0])  # forgotten: checked again
    assert signatures_checked == [minted[0]]
