"""Signed bearer tokens (JWT) that carry who the caller is and which centre they work in.

Tokens are verified one of two ways, chosen by the settings:

* **a shared secret** (HS256, what ``tp-token`` and the tests mint): ``TUTORPULSE_JWT_SECRET``,
  at least 32 bytes. Without it a service refuses to start, unless development mode is
  explicit (``TUTORPULSE_DEV_MODE=1``, which ``make run`` sets): then the development secret
  below is used, so anyone can mint any token: never in production.
* **an identity provider** (RS256/ES256): ``TUTORPULSE_JWT_JWKS_URL`` names its JSON Web Key
  Set; ``TUTORPULSE_JWT_ISSUER`` its issuer, ``TUTORPULSE_JWT_ALGORITHMS`` the algorithms
  accepted, and ``TUTORPULSE_JWT_ROLE_CLAIM``, ``_CENTRE_CLAIM``, ``_USER_CLAIM`` or
  ``_EMAIL_CLAIM`` where the role, the centre and the person are (dotted paths reach into
  nested claims). Only the provider's tokens are accepted then.

Either way a token must name the audience ``TUTORPULSE_JWT_AUDIENCE`` (``tutorpulse``) and the
issuer, and carry an expiry.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import structlog

from shared.settings import flag
from shared.tenancy.actor import Actor, is_valid_centre_id
from shared.tenancy.identity import person_id
from shared.tenancy.roles import Role

log = structlog.get_logger(__name__)

DEV_SECRET = "tutorpulse-dev-secret-change-me-in-production"
"""Public (it is in the source): accepted only in development mode."""
ISSUER = "tutorpulse"
AUDIENCE = "tutorpulse"
MIN_SECRET_BYTES = 32
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_CACHE_SECONDS = 300
JWKS_REFRESH_SECONDS = 30.0
"""A token naming a key the cached set lacks refetches the set at most this often."""
_ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
               "EdDSA")


class InvalidToken(Exception):
    """Missing, expired, forged or malformed token (HTTP 401)."""


class KeysUnavailable(InvalidToken):
    """The identity provider's keys cannot be fetched, so no token can be checked (HTTP 503)."""


class TokenConfigurationError(RuntimeError):
    """The token settings are unsafe or incomplete: the service must not start."""


@dataclass(frozen=True)
class TokenSettings:
    secret: str | None = None
    """HS256 key; None with ``jwks_url``."""
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str = ISSUER
    audience: str = AUDIENCE
    role_claim: str = "role"
    centre_claim: str = "centre"
    user_claim: str = "sub"
    email_claim: str | None = None
    dev_mode: bool = False


def development_mode(env: Mapping[str, str] | None = None) -> bool:
    """``TUTORPULSE_DEV_MODE=1``: development secrets are acceptable. A value that is neither
    yes nor no is a :class:`TokenConfigurationError` (a service must not guess)."""
    env = os.environ if env is None else env
    try:
        return flag(env.get("TUTORPULSE_DEV_MODE"), name="TUTORPULSE_DEV_MODE")
    except ValueError as error:
        raise TokenConfigurationError(str(error)) from error


def token_settings(env: Mapping[str, str] | None = None) -> TokenSettings:
    """The settings from the environment; :class:`TokenConfigurationError` if they are unsafe."""
    env = os.environ if env is None else env
    dev = development_mode(env)
    audience = env.get("TUTORPULSE_JWT_AUDIENCE", AUDIENCE).strip()
    if not audience:
        raise TokenConfigurationError("TUTORPULSE_JWT_AUDIENCE must not be empty")
    claims = {"role_claim": env.get("TUTORPULSE_JWT_ROLE_CLAIM", "role").strip() or "role",
              "centre_claim": env.get("TUTORPULSE_JWT_CENTRE_CLAIM", "centre").strip() or "centre",
              "user_claim": env.get("TUTORPULSE_JWT_USER_CLAIM", "sub").strip() or "sub",
              "email_claim": env.get("TUTORPULSE_JWT_EMAIL_CLAIM", "").strip() or None}
    jwks_url = env.get("TUTORPULSE_JWT_JWKS_URL", "").strip()
    if jwks_url:
        issuer = env.get("TUTORPULSE_JWT_ISSUER", "").strip()
        if not issuer:
            raise TokenConfigurationError(
                "TUTORPULSE_JWT_JWKS_URL needs TUTORPULSE_JWT_ISSUER (the provider's 'iss')")
        listed = env.get("TUTORPULSE_JWT_ALGORITHMS", "RS256,ES256").split(",")
        algorithms = tuple(a.strip() for a in listed if a.strip())
        refused = [a for a in algorithms if a not in _ASYMMETRIC]
        if not algorithms or refused:
            raise TokenConfigurationError(
                f"TUTORPULSE_JWT_ALGORITHMS: an identity provider signs with public-key "
                f"algorithms ({', '.join(_ASYMMETRIC)}), not {', '.join(refused) or 'nothing'}")
        return TokenSettings(jwks_url=jwks_url, algorithms=algorithms, issuer=issuer,
                             audience=audience, dev_mode=dev, **claims)
    secret = env.get("TUTORPULSE_JWT_SECRET", "")
    if not secret:
        if not dev:
            raise TokenConfigurationError(
                "TUTORPULSE_JWT_SECRET is not set: set it (at least 32 random bytes), or "
                "TUTORPULSE_JWT_JWKS_URL for an identity provider, or TUTORPULSE_DEV_MODE=1 to "
                "accept the public development secret on a development machine")
        secret = DEV_SECRET
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise TokenConfigurationError(
            f"TUTORPULSE_JWT_SECRET has {len(secret.encode())} bytes; use at least "
            f"{MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 48`)")
    return TokenSettings(secret=secret, issuer=env.get("TUTORPULSE_JWT_ISSUER", ISSUER).strip()
                         or ISSUER, audience=audience, dev_mode=dev, **claims)


class TokenVerifier:
    """Checks tokens against one :class:`TokenSettings` (keeps an identity provider's keys)."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_jwk_set=True,
                                         lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)

    def verify(self, token: str, *, key: str | None = None) -> Actor:
        settings = self.settings
        try:
            claims = jwt.decode(
                token, key or self._key_for(token),
                algorithms=["HS256"] if key else list(settings.algorithms),
                issuer=settings.issuer, audience=settings.audience,
                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("token is not meant for tutorpulse (audience)") from error
        except jwt.PyJWTError as error:
            raise InvalidToken("token is not valid") from error
        return self._actor(claims)

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self.settings.secret
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("token is not valid") from error
        if header.get("alg") not in self.settings.algorithms:
            raise InvalidToken("token is not valid")
        kid = header.get("kid")
        try:
            keys = self._jwks.get_signing_keys()
            found = [k for k in keys if k.key_id == kid]
            if not found and self._may_refresh():
                found = [k for k in self._jwks.get_signing_keys(refresh=True) if k.key_id == kid]
        except jwt.PyJWKClientConnectionError as error:
            log.warning("tokens.jwks_unreachable", url=self.settings.jwks_url, error=str(error))
            raise KeysUnavailable("the identity provider's keys cannot be fetched") from error
        except jwt.PyJWKClientError as error:
            raise InvalidToken("token is not valid") from error
        if not found:
            raise InvalidToken("token is signed with a key the identity provider does not list")
        return found[0].key

    def _may_refresh(self) -> bool:
        """A forced refetch at most every JWKS_REFRESH_SECONDS, whatever tokens arrive."""
        with self._lock:
            now = time.monotonic()
            if now - self._refreshed_at < JWKS_REFRESH_SECONDS:
                return False
            self._refreshed_at = now
            return True

    def _actor(self, claims: dict[str, Any]) -> Actor:
        settings = self.settings
        centre = _claim(claims, settings.centre_claim)
        if not isinstance(centre, str) or not is_valid_centre_id(centre):
            raise InvalidToken("token names no valid centre")
        role = _role(_claim(claims, settings.role_claim))
        try:
            if settings.email_claim:
                email = _claim(claims, settings.email_claim)
                if not isinstance(email, str) or "@" not in email:
                    raise ValueError("no e-mail")
                user_id = person_id(centre, email)
            else:
                user_id = UUID(str(_claim(claims, settings.user_claim)))
        except (ValueError, TypeError) as error:
            raise InvalidToken("token names no valid person") from error
        return Actor(user_id=user_id, role=role, centre_id=centre)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for name in path.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def _role(value: Any) -> Role:
    """A role name, or a list of names holding exactly one tutorpulse role (as providers that
    list every role of a user do)."""
    names = value if isinstance(value, list) else [value]
    roles = {Role(name) for name in names if isinstance(name, str) and name in Role.__members__}
    if len(roles) != 1:
        raise InvalidToken("token names no tutorpulse role" if not roles
                           else "token names more than one tutorpulse role")
    return roles.pop()


@functools.lru_cache(maxsize=4)
def _verifier_for(settings: TokenSettings) -> TokenVerifier:
    if settings.dev_mode and settings.secret == DEV_SECRET:
        log.warning("tokens.development_secret",
                    detail="TUTORPULSE_DEV_MODE: tokens signed with the public development "
                           "secret are accepted")
    return TokenVerifier(settings)


_current: TokenVerifier | None = None


def verifier(env: Mapping[str, str] | None = None) -> TokenVerifier:
    """The verifier of the settings in ``env`` (the environment when None, and then the one
    :func:`verify` uses from now on); :class:`TokenConfigurationError` if they are unsafe
    (services call this at start, so they refuse to start)."""
    global _current
    built = _verifier_for(token_settings(env))
    if env is None:
        _current = built
    return built


def forget_settings() -> None:
    """Read the settings from the environment again at the next :func:`verify`."""
    global _current
    _current = None


def check_at_start(service: str) -> TokenVerifier:
    """What every service that takes tokens calls while starting: the verifier, or a logged
    :class:`TokenConfigurationError` that stops the start."""
    try:
        return verifier()
    except TokenConfigurationError as error:
        log.error("tokens.misconfigured", service=service, error=str(error))
        raise


def signing_key() -> str:
    """``TUTORPULSE_JWT_SECRET``; the development secret when unset (for ``tp-token`` on a
    development machine: services accept it only in development mode)."""
    return os.environ.get("TUTORPULSE_JWT_SECRET") or DEV_SECRET


def mint(
    actor: Actor, *, ttl: timedelta = timedelta(hours=12), key: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token for ``actor`` (development and tests; an identity provider mints the
    real ones when ``TUTORPULSE_JWT_JWKS_URL`` is set)."""
    now = datetime.now(UTC)
    claims = {
        "iss": os.environ.get("TUTORPULSE_JWT_ISSUER", "").strip() or ISSUER,
        "aud": audience or os.environ.get("TUTORPULSE_JWT_AUDIENCE", "").strip() or AUDIENCE,
        "sub": str(actor.user_id),
        "role": actor.role.value,
        "centre": actor.centre_id,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key or signing_key(), algorithm="HS256")


def verify(token: str, *, key: str | None = None) -> Actor:
    """The actor a token names; :class:`InvalidToken` (401) when it is not valid here. The
    settings are those read when the service started (:func:`check_at_start`)."""
    return (_current or verifier()).verify(token, key=key)
