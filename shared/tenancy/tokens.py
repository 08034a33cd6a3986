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
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import structlog

from shared.observability.outage import OutageLog
from shared.settings import load
from shared.tenancy.actor import Actor, is_valid_centre_id
from shared.tenancy.identity import person_id
from shared.tenancy.roles import Role
from shared.tenancy.settings import AUDIENCE, ISSUER, JwtSettings

log = structlog.get_logger(__name__)

DEV_SECRET = "tutorpulse-dev-secret-change-me-in-production"
"""Public (it is in the source): accepted only in development mode."""
MIN_SECRET_BYTES = 32
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_CACHE_SECONDS = 300.0
"""An identity provider's key set is fetched again this often (in the background)."""
JWKS_REFRESH_SECONDS = 30.0
"""A token naming a key the current set lacks refetches the set at most this often."""
JWKS_MAX_AGE_SECONDS = 3600.0
"""While the provider cannot be reached, the keys last fetched are used for this long."""
UNKNOWN_KEYS_REMEMBERED = 1024
"""Key ids tokens named that the provider did not list, remembered so that each is refused
(401) without another fetch; bounded, whatever ids tokens make up."""
VERIFIED_TOKENS_KEPT = 10_000
"""Tokens a verifier remembers having verified (a few MiB), the oldest forgotten first."""
_ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


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


def token_settings(settings: JwtSettings) -> TokenSettings:
    """How tokens are checked with ``settings``; :class:`TokenConfigurationError` if that is unsafe
    or incomplete."""
    audience = settings.audience.strip()
    if not audience:
        raise TokenConfigurationError("TUTORPULSE_JWT_AUDIENCE must not be empty")
    common = TokenSettings(
        role_claim=settings.role_claim.strip() or "role",
        centre_claim=settings.centre_claim.strip() or "centre",
        user_claim=settings.user_claim.strip() or "sub",
        email_claim=(settings.email_claim or "").strip() or None,
        audience=audience,
        dev_mode=settings.dev_mode,
    )
    issuer = (settings.issuer or "").strip()
    if settings.jwks_url:
        if not issuer:
            raise TokenConfigurationError(
                "TUTORPULSE_JWT_JWKS_URL needs TUTORPULSE_JWT_ISSUER (the provider's 'iss')"
            )
        algorithms = tuple(a.strip() for a in settings.algorithms if a.strip())
        refused = [a for a in algorithms if a not in _ASYMMETRIC]
        if not algorithms or refused:
            raise TokenConfigurationError(
                f"TUTORPULSE_JWT_ALGORITHMS: an identity provider signs with public-key "
                f"algorithms ({', '.join(_ASYMMETRIC)}), not {', '.join(refused) or 'nothing'}"
            )
        return replace(common, jwks_url=settings.jwks_url, algorithms=algorithms, issuer=issuer)
    secret = settings.secret or ""
    if not secret:
        if not settings.dev_mode:
            raise TokenConfigurationError(
                "TUTORPULSE_JWT_SECRET is not set: set it (at least 32 random bytes), or "
                "TUTORPULSE_JWT_JWKS_URL for an identity provider, or TUTORPULSE_DEV_MODE=1 to "
                "accept the public development secret on a development machine"
            )
        secret = DEV_SECRET
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise TokenConfigurationError(
            f"TUTORPULSE_JWT_SECRET has {len(secret.encode())} bytes; use at least "
            f"{MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 48`)"
        )
    return replace(common, secret=secret, issuer=issuer or ISSUER)


class JwksKeys:
    """An identity provider's signing keys, kept current by a background thread so that checking
    a token never waits on the network (the fetch is a blocking HTTP call).

    The thread fetches the key set at once, then every ``refresh_seconds`` (before the keys go
    stale), and again soon after a request names a key the set lacks (a rotation), but never
    more often than every ``min_refresh_seconds`` whatever tokens arrive. A failed fetch is
    retried with back-off (1 s doubling, at most ``min_refresh_seconds``) and the keys last
    fetched are used meanwhile, for at most ``max_age_seconds``: an outage of the provider is
    logged once when it starts and once when it ends (``tokens.jwks.unavailable`` /
    ``.recovered``)."""

    def __init__(
        self,
        url: str,
        *,
        refresh_seconds: float = JWKS_CACHE_SECONDS,
        min_refresh_seconds: float = JWKS_REFRESH_SECONDS,
        max_age_seconds: float = JWKS_MAX_AGE_SECONDS,
        timeout: float = JWKS_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.outages = OutageLog("tokens.jwks", url=url)
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self._changed = threading.Condition()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._fetch_started_at = float("-inf")
        """When the fetch that brought the current keys started."""
        self._unknown: dict[str, float] = {}
        """Key ids that tokens named and the keys lacked, with when that was first seen."""
        self._attempted_at = float("-inf")
        self._wanted = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="jwks-refresher", daemon=True)
        self._thread.start()

    def key(self, kid: str | None) -> Any:
        """The current key named ``kid``, without waiting: :class:`KeysUnavailable` (503) while
        no usable key set is at hand or a fetch may still bring the key (a rotation),
        :class:`InvalidToken` (401) once a key set fetched after a token first named ``kid``
        does not list it."""
        now = time.monotonic()
        name = kid or ""
        with self._changed:
            usable = self._fetched_at is not None and now - self._fetched_at <= self.max_age_seconds
            found = self._keys.get(name) if usable else None
            if found is not None:
                return found
            if usable:
                first_named = self._unknown.setdefault(name, now)
                if len(self._unknown) > UNKNOWN_KEYS_REMEMBERED:
                    del self._unknown[next(iter(self._unknown))]
                if self._fetch_started_at > first_named:
                    raise InvalidToken(
                        "token is signed with a key the identity provider does not list"
                    )
        self.request_refresh()
        if not usable:
            raise KeysUnavailable("the identity provider's keys cannot be fetched")
        raise KeysUnavailable(
            "token is signed with a key not seen before: the identity "
            "provider's keys are being fetched again"
        )

    def request_refresh(self) -> None:
        """Ask the thread for a fetch (done at most every ``min_refresh_seconds``)."""
        with self._changed:
            if not self._wanted:
                self._wanted = True
                self._changed.notify_all()

    def wait_until_fetched(self, timeout: float) -> bool:
        """Block until a key set has been fetched (for start-up checks and tests)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._fetched_at is not None, timeout)

    def close(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def _run(self) -> None:
        next_at = time.monotonic()
        back_off = 1.0
        while True:
            with self._changed:
                while not self._stopping:
                    now = time.monotonic()
                    due = next_at
                    if self._wanted:
                        due = min(due, max(now, self._attempted_at + self.min_refresh_seconds))
                    if due <= now:
                        break
                    self._changed.wait(due - now)
                if self._stopping:
                    return
                self._wanted = False
                self._attempted_at = time.monotonic()
            if self._fetch(self._attempted_at):
                next_at, back_off = time.monotonic() + self.refresh_seconds, 1.0
            else:
                next_at = time.monotonic() + back_off
                back_off = min(back_off * 2, max(1.0, self.min_refresh_seconds))

    def _fetch(self, started: float) -> bool:
        try:
            signing = self._client.get_signing_keys()
        except (jwt.PyJWTError, ValueError, OSError) as error:  # unreachable, or not a key set
            self.outages.failed(f"{type(error).__name__}: {error}")
            return False
        keys = {jwk.key_id: jwk.key for jwk in signing if jwk.key_id}
        with self._changed:
            before = set(self._keys)
            self._keys, self._fetched_at = keys, time.monotonic()
            self._fetch_started_at = started
            for kid in keys:
                self._unknown.pop(kid, None)
            self._changed.notify_all()
        self.outages.succeeded()
        if set(keys) != before:
            log.info("tokens.jwks_keys", url=self.url, kids=sorted(keys))
        return True


class TokenVerifier:
    """Checks tokens against one :class:`TokenSettings` (keeps an identity provider's keys,
    refreshed in the background: see :class:`JwksKeys`)."""

    def __init__(self, settings: TokenSettings, **jwks_timing: float) -> None:
        """``jwks_timing``: :class:`JwksKeys`' intervals (tests shorten them)."""
        self.settings = settings
        self.jwks: JwksKeys | None = None
        self._verified: dict[str, tuple[Any, float, Actor]] = {}
        """Tokens verified by this verifier: the key that verified each, its expiry, its actor
        (see :meth:`verify`)."""
        self._verified_lock = threading.Lock()
        if settings.jwks_url:
            self.jwks = JwksKeys(settings.jwks_url, **jwks_timing)
            # The refresher holds the keys, not the verifier: a verifier nobody uses any more
            # stops its thread.
            weakref.finalize(self, self.jwks.close)

    def close(self) -> None:
        if self.jwks is not None:
            self.jwks.close()

    def verify(self, token: str, *, key: str | None = None) -> Actor:
        """The actor ``token`` names; :class:`InvalidToken` if it is not valid.

        A token this verifier has already verified is not checked again (its signature is the
        dearest part of a request that does little else) while it has not expired and the key
        that verified it is still the one its header names: a key the identity provider no
        longer lists refuses it as before, and a verifier with another secret never saw it.
        At most :data:`VERIFIED_TOKENS_KEPT` tokens are kept, the oldest forgotten first."""
        if key is not None:
            return self._verify(token, key, ["HS256"])[0]
        signing_key = self._key_for(token)
        with self._verified_lock:
            kept = self._verified.get(token)
        if kept is not None and kept[0] is signing_key and time.time() < kept[1]:
            return kept[2]
        actor, expires = self._verify(token, signing_key, list(self.settings.algorithms))
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (signing_key, expires, actor)
        return actor

    def _verify(self, token: str, key: Any, algorithms: list[str]) -> tuple[Actor, float]:
        """The actor of a token whose signature ``key`` checks, and when the token expires."""
        settings = self.settings
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=settings.issuer,
                audience=settings.audience,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("token is not meant for tutorpulse (audience)") from error
        except jwt.PyJWTError as error:
            raise InvalidToken("token is not valid") from error
        return self._actor(claims), float(int(claims["exp"]))  # as PyJWT compares it

    def _key_for(self, token: str) -> Any:
        if self.jwks is None:
            return self.settings.secret
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("token is not valid") from error
        if header.get("alg") not in self.settings.algorithms:
            raise InvalidToken("token is not valid")
        kid = header.get("kid")
        return self.jwks.key(kid if isinstance(kid, str) else None)

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
    list every role of a user do). SYSTEM is no person's role: a token naming it names none."""
    names = value if isinstance(value, list) else [value]
    roles = {
        Role(name)
        for name in names
        if isinstance(name, str) and name in Role.__members__ and name != Role.SYSTEM
    }
    if len(roles) != 1:
        raise InvalidToken(
            "token names no tutorpulse role"
            if not roles
            else "token names more than one tutorpulse role"
        )
    return roles.pop()


@functools.lru_cache(maxsize=4)
def _verifier_for(settings: TokenSettings) -> TokenVerifier:
    if settings.dev_mode and settings.secret == DEV_SECRET:
        log.warning(
            "tokens.development_secret",
            detail="TUTORPULSE_DEV_MODE: tokens signed with the public development "
            "secret are accepted",
        )
    return TokenVerifier(settings)


_current: TokenVerifier | None = None


def verifier(settings: JwtSettings | None = None) -> TokenVerifier:
    """The verifier for ``settings`` (:class:`TokenConfigurationError` if those settings are
    unsafe); without, the one this process's service installed when it started
    (:func:`check_at_start`), which :func:`verify` uses."""
    if settings is not None:
        return _verifier_for(token_settings(settings))
    if _current is None:
        raise TokenConfigurationError(
            "no token settings: the service was built without check_at_start"
        )
    return _current


def forget_settings() -> None:
    """Uninstall the verifier :func:`check_at_start` installed (tests that build apps)."""
    global _current
    _current = None


def check_at_start(service: str, settings: JwtSettings) -> TokenVerifier:
    """What every service that takes tokens calls while starting: installs (and returns) the
    verifier for ``settings``, or logs the :class:`TokenConfigurationError` that stops the start."""
    global _current
    try:
        _current = verifier(settings)
    except TokenConfigurationError as error:
        log.error("tokens.misconfigured", service=service, error=str(error))
        raise
    return _current


def signing_key(settings: JwtSettings) -> str:
    """The secret of ``settings``; the development secret when none is set (for ``tp-token`` on a
    development machine: services accept it only in development mode)."""
    return settings.secret or DEV_SECRET


def mint(
    actor: Actor,
    *,
    ttl: timedelta = timedelta(hours=12),
    key: str | None = None,
    audience: str | None = None,
    settings: JwtSettings | None = None,
) -> str:
    """An HS256 token for ``actor`` (development and tests; an identity provider mints the
    real ones when ``TUTORPULSE_JWT_JWKS_URL`` is set), for the issuer, audience and secret of
    ``settings`` (by default those of this process's environment, as ``tp-token`` runs)."""
    if actor.role is Role.SYSTEM:
        raise ValueError("no token carries SYSTEM: only the scheduler acts as it, without one")
    jwt_settings = load(JwtSettings) if settings is None else settings
    now = datetime.now(UTC)
    claims = {
        "iss": (jwt_settings.issuer or "").strip() or ISSUER,
        "aud": audience or jwt_settings.audience.strip() or AUDIENCE,
        "sub": str(actor.user_id),
        "role": actor.role.value,
        "centre": actor.centre_id,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key or signing_key(jwt_settings), algorithm="HS256")


def verify(token: str, *, key: str | None = None) -> Actor:
    """The actor a token names; :class:`InvalidToken` (401) when it is not valid here. The
    settings are those read when the service started (:func:`check_at_start`)."""
    return verifier().verify(token, key=key)
