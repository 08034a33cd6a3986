"""How bearer tokens are checked: a shared secret, or an identity provider's keys
(``shared.tenancy.tokens`` turns these into the checked :class:`TokenSettings`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared.settings import setting

ISSUER = "tutorpulse"
AUDIENCE = "tutorpulse"


@dataclass(frozen=True)
class JwtSettings:
    secret: str | None = setting(
        "TUTORPULSE_JWT_SECRET",
        None,
        "HS256 key, at least 32 bytes (secret `tutorpulse-secrets`); required outside "
        "development mode unless an identity provider is set",
        secret=True,
    )
    dev_mode: bool = setting(
        "TUTORPULSE_DEV_MODE",
        False,
        "`1`: accept the public development secret when no secret is set (`make run` sets it), "
        "and let the live gateway take a token in the `?token=` query parameter (refused "
        "otherwise: a token in a URL lands in proxies' logs)",
    )
    audience: str = setting("TUTORPULSE_JWT_AUDIENCE", AUDIENCE, "the `aud` every token must name")
    issuer: str | None = setting(
        "TUTORPULSE_JWT_ISSUER",
        None,
        "the `iss` every token must name",
        shown=f"`{ISSUER}` (required with a JWKS URL)",
    )
    jwks_url: str | None = setting(
        "TUTORPULSE_JWT_JWKS_URL",
        None,
        "an identity provider's JWKS: then only its RS256/ES256 tokens are accepted",
    )
    algorithms: tuple[str, ...] = setting(
        "TUTORPULSE_JWT_ALGORITHMS",
        ("RS256", "ES256"),
        "algorithms accepted from the identity provider (comma-separated)",
    )
    role_claim: str = setting(
        "TUTORPULSE_JWT_ROLE_CLAIM",
        "role",
        "the claim with the provider's role (dotted paths reach nested claims)",
    )
    centre_claim: str = setting(
        "TUTORPULSE_JWT_CENTRE_CLAIM", "centre", "the claim with the centre id"
    )
    user_claim: str = setting(
        "TUTORPULSE_JWT_USER_CLAIM", "sub", "the claim with the tutorpulse person id (a UUID)"
    )
    email_claim: str | None = setting(
        "TUTORPULSE_JWT_EMAIL_CLAIM",
        None,
        "the claim with the e-mail a person is registered with (instead of the person id)",
    )


def dev_mode_setting() -> Any:
    """``TUTORPULSE_DEV_MODE`` as :class:`JwtSettings` declares it, for another program's
    settings that need it too (the public development master key of a key store): one
    declaration per variable, read into a field ``dev_mode: bool = dev_mode_setting()``."""
    original = next(item for item in dataclasses.fields(JwtSettings) if item.name == "dev_mode")
    return dataclasses.field(default=original.default, metadata=original.metadata)
