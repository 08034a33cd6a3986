"""Token settings refuse what is unsafe; tokens carry an audience; an identity provider's
RS256/ES256 tokens are checked against its JWKS (served here from 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.settings import load
from shared.tenancy import Actor, Role
from shared.tenancy.identity import person_id
from shared.tenancy.settings import JwtSettings
from shared.tenancy.tokens import (
    DEV_SECRET,
    InvalidToken,
    KeysUnavailable,
    TokenConfigurationError,
    TokenVerifier,
    mint,
    token_settings,
    verifier,
)
from tests.support.identity import ISSUER, IdentityProvider

SECRET = "a-secret-of-more-than-thirty-two-bytes-0123456789"


def jwt_settings(environ: dict[str, str]) -> JwtSettings:
    """The token settings the variables ``environ`` give a service."""
    return load(JwtSettings, environ)


def with_keys(verifier: TokenVerifier) -> TokenVerifier:
    """``verifier`` once its background thread has fetched the provider's keys."""
    assert verifier.jwks is not None and verifier.jwks.wait_until_fetched(10)
    return verifier


def eventually(attempt: Callable[[], Any], timeout: float = 10) -> Any:
    """``attempt()`` once it stops raising KeysUnavailable (a refresh in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except KeysUnavailable:
            assert time.monotonic() < deadline, "the keys were never refreshed"
            time.sleep(0.02)


def test_without_a_secret_services_refuse_to_start_unless_development_mode_is_explicit() -> None:
    with pytest.raises(TokenConfigurationError, match="TUTORPULSE_JWT_SECRET is not set"):
        token_settings(jwt_settings({}))
    with pytest.raises(TokenConfigurationError):
        verifier(jwt_settings({"TUTORPULSE_DEV_MODE": "0"}))
    dev = verifier(jwt_settings({"TUTORPULSE_DEV_MODE": "1"}))
    who = Actor(user_id=uuid4(), role=Role.SUPER_ADMIN, centre_id="alpha")
    assert dev.verify(mint(who, key=DEV_SECRET)) == who
    # Outside development mode the development secret signs nothing that is accepted.
    with pytest.raises(InvalidToken):
        verifier(jwt_settings({"TUTORPULSE_JWT_SECRET": SECRET})).verify(mint(who, key=DEV_SECRET))


def test_a_key_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(TokenConfigurationError, match="at least 32"):
        token_settings(jwt_settings({"TUTORPULSE_JWT_SECRET": "x" * 31}))
    with pytest.raises(TokenConfigurationError, match="at least 32"):
        token_settings(jwt_settings({"TUTORPULSE_JWT_SECRET": "short", "TUTORPULSE_DEV_MODE": "1"}))
    assert (
        token_settings(jwt_settings({"TUTORPULSE_JWT_SECRET": "é" * 16})).secret == "é" * 16
    )  # 32 bytes


def test_tokens_carry_and_are_checked_for_their_audience() -> None:
    who = Actor(user_id=uuid4(), role=Role.TEACHER, centre_id="alpha")
    token = mint(who, key=SECRET)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "tutorpulse"
    tokens = verifier(jwt_settings({"TUTORPULSE_JWT_SECRET": SECRET}))
    assert tokens.verify(token) == who
    with pytest.raises(InvalidToken, match="audience"):
        tokens.verify(mint(who, key=SECRET, audience="another-app"))
    without = jwt.encode(
        {
            "iss": "tutorpulse",
            "sub": str(who.user_id),
            "role": "TEACHER",
            "centre": "alpha",
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        SECRET,
    )
    with pytest.raises(InvalidToken):
        tokens.verify(without)
    elsewhere = verifier(
        jwt_settings({"TUTORPULSE_JWT_SECRET": SECRET, "TUTORPULSE_JWT_AUDIENCE": "centres"})
    )
    with pytest.raises(InvalidToken):
        elsewhere.verify(token)
    assert elsewhere.verify(mint(who, key=SECRET, audience="centres")) == who


# --- an identity provider -------------------------------------------------------------------


def test_an_identity_providers_rs256_and_es256_tokens_are_accepted(idp: IdentityProvider) -> None:
    tokens = with_keys(TokenVerifier(token_settings(jwt_settings(idp.settings()))))
    user = uuid4()
    claims = {"sub": str(user), "role": "TEACHER", "centre": "alpha"}
    assert tokens.verify(idp.token(claims)) == Actor(user, Role.TEACHER, "alpha")
    assert tokens.verify(idp.token(claims, alg="ES256")) == Actor(user, Role.TEACHER, "alpha")
    assert idp.requests == 1  # the key set is cached

    # Our own HS256 tokens (even with the right secret) and other issuers are refused.
    for forged in (
        mint(Actor(user, Role.SUPER_ADMIN, "alpha"), key=SECRET),
        idp.token({**claims, "iss": "https://elsewhere.example"}),
        idp.token({**claims, "aud": "another-app"}),
        idp.token({**claims, "exp": datetime.now(UTC) - timedelta(minutes=5)}),
        idp.token({**claims, "role": "KING"}),
    ):
        with pytest.raises(InvalidToken):
            tokens.verify(forged)


def test_claim_names_and_nested_roles_are_settings(idp: IdentityProvider) -> None:
    tokens = with_keys(
        TokenVerifier(
            token_settings(
                jwt_settings(
                    idp.settings(
                        TUTORPULSE_JWT_ROLE_CLAIM="realm_access.roles",
                        TUTORPULSE_JWT_CENTRE_CLAIM="tp_centre",
                        TUTORPULSE_JWT_EMAIL_CLAIM="email",
                        TUTORPULSE_JWT_AUDIENCE="tutorpulse-api",
                    )
                )
            )
        )
    )
    token = idp.token(
        {
            "sub": "f:some-provider-id",
            "aud": "tutorpulse-api",
            "tp_centre": "beta",
            "email": "Ann@Beta.example",
            "realm_access": {"roles": ["offline_access", "STUDENT"]},
        }
    )
    # The person is the one registered with that e-mail in that centre.
    assert tokens.verify(token) == Actor(
        person_id("beta", "ann@beta.example"), Role.STUDENT, "beta"
    )
    two_roles = idp.token(
        {
            "aud": "tutorpulse-api",
            "tp_centre": "beta",
            "email": "a@b.example",
            "realm_access": {"roles": ["STUDENT", "TEACHER"]},
        }
    )
    with pytest.raises(InvalidToken, match="more than one"):
        tokens.verify(two_roles)


def test_an_unknown_key_refetches_the_set_at_most_every_so_often(idp: IdentityProvider) -> None:
    tokens = with_keys(
        TokenVerifier(token_settings(jwt_settings(idp.settings())), min_refresh_seconds=0.3)
    )
    claims = {"sub": str(uuid4()), "role": "TEACHER", "centre": "alpha"}
    tokens.verify(idp.token(claims))
    # A key nobody lists: "try again" while the set is fetched again, then refused for good.
    with pytest.raises(KeysUnavailable):
        tokens.verify(idp.token(claims, kid="rotated-away"))
    with pytest.raises(InvalidToken, match="does not list"):
        eventually(lambda: tokens.verify(idp.token(claims, kid="rotated-away")))
    for _ in range(5):
        with pytest.raises(InvalidToken, match="does not list"):
            tokens.verify(idp.token(claims, kid="rotated-away"))
    assert idp.requests == 2
    # A flood of made-up key ids fetches the set at most once per 0.3 s (about 4 in 1 s).
    started, made_up = time.monotonic(), 0
    while time.monotonic() - started < 1.0:
        with pytest.raises(InvalidToken):
            tokens.verify(idp.token(claims, kid=f"made-up-{made_up}"))
        made_up += 1
        time.sleep(0.005)
    assert made_up > 50 and idp.requests <= 2 + 1.0 / 0.3 + 1, (made_up, idp.requests)


def test_a_rotated_key_is_picked_up_and_the_withdrawn_one_refused(idp: IdentityProvider) -> None:
    tokens = with_keys(
        TokenVerifier(token_settings(jwt_settings(idp.settings())), min_refresh_seconds=0.2)
    )
    claims = {"sub": str(uuid4()), "role": "TEACHER", "centre": "alpha"}
    old = idp.token(claims)
    assert tokens.verify(old).role is Role.TEACHER
    new_kid = idp.rotate()
    fresh = idp.token(claims)
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    # The first checks answer 503 (try again) while the set is fetched again in the background;
    # then the new key is accepted, and the withdrawn one no longer is.
    assert eventually(lambda: tokens.verify(fresh)).role is Role.TEACHER
    with pytest.raises(InvalidToken):
        eventually(lambda: tokens.verify(old))


def test_a_provider_that_does_not_answer_never_holds_up_a_check(idp: IdentityProvider) -> None:
    """The keys are fetched by a background thread: a check only reads what it has."""
    claims = {"sub": str(uuid4()), "role": "TEACHER", "centre": "alpha"}
    idp.stall()
    tokens = TokenVerifier(token_settings(jwt_settings(idp.settings())))
    for _ in range(20):
        started = time.monotonic()
        with pytest.raises(KeysUnavailable):
            tokens.verify(idp.token(claims))
        assert time.monotonic() - started < 0.5  # never the fetch's 5 s timeout
    idp.resume()
    assert eventually(lambda: tokens.verify(idp.token(claims))).role is Role.TEACHER


def test_an_unreachable_provider_is_not_a_bad_token() -> None:
    tokens = TokenVerifier(
        token_settings(
            jwt_settings(
                {
                    "TUTORPULSE_JWT_JWKS_URL": "http://127.0.0.1:9/certs",
                    "TUTORPULSE_JWT_ISSUER": ISSUER,
                }
            )
        )
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": str(uuid4())}, other, algorithm="RS256", headers={"kid": "k"})
    with pytest.raises(KeysUnavailable):
        tokens.verify(token)


def test_identity_provider_settings_are_checked_at_start() -> None:
    with pytest.raises(TokenConfigurationError, match="ISSUER"):
        token_settings(jwt_settings({"TUTORPULSE_JWT_JWKS_URL": "https://idp.example.org/certs"}))
    with pytest.raises(TokenConfigurationError, match="public-key"):
        token_settings(
            jwt_settings(
                {
                    "TUTORPULSE_JWT_JWKS_URL": "https://idp.example.org/certs",
                    "TUTORPULSE_JWT_ISSUER": ISSUER,
                    "TUTORPULSE_JWT_ALGORITHMS": "HS256",
                }
            )
        )
    # With a provider, no secret is needed, even outside development mode.
    assert (
        token_settings(
            jwt_settings(
                {
                    "TUTORPULSE_JWT_JWKS_URL": "https://idp.example.org/certs",
                    "TUTORPULSE_JWT_ISSUER": ISSUER,
                }
            )
        ).secret
        is None
    )
