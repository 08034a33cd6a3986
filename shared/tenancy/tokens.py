"""Signed bearer tokens (JWT) that carry who the caller is and which centre they work in."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from shared.tenancy.actor import Actor, is_valid_centre_id
from shared.tenancy.roles import Role

DEV_SECRET = "tutorpulse-dev-secret-change-me-in-production"
ISSUER = "tutorpulse"


class InvalidToken(Exception):
    """Missing, expired, forged or malformed token (HTTP 401)."""




def signing_key() -> str:
    """``TUTORPULSE_JWT_SECRET``; the development secret when unset."""
    return os.environ.get("TUTORPULSE_JWT_SECRET", DEV_SECRET)


def mint(
    actor: Actor, *, ttl: timedelta = timedelta(hours=12), key: str | None = None
) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "sub": str(actor.user_id),
        "role": actor.role.value,
        "centre": actor.centre_id,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key or signing_key(), algorithm="HS256")


def verify(token: str, *, key: str | None = None) -> Actor:
    try:
        claims = jwt.decode(
            token,
            key or signing_key(),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iss"]},
        )
        role = Role(claims["role"])
        centre = claims["centre"]
        user_id = UUID(claims["sub"])
    except jwt.ExpiredSignatureError as error:
        raise InvalidToken("token has expired") from error
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as error:
        raise InvalidToken("token is not valid") from error
    if not isinstance(centre, str) or not is_valid_centre_id(centre):
        raise InvalidToken("token names no valid centre")
    return Actor(user_id=user_id, role=role, centre_id=centre)
