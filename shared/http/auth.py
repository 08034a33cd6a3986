"""Who is calling: the bearer token, and for SUPER_ADMIN an explicitly named centre.

A token of a person whose data was erased (``shared.privacy.erasure``) is refused like an
invalid one, wherever the application put an :class:`ErasureCheck` in the connection's scope
(:func:`check_erasures`)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import anyio.to_thread
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared.privacy.erasure import ErasureCheck, ErasureCheckUnavailable
from shared.tenancy import Actor, require
from shared.tenancy.tokens import InvalidToken, verify

ACTING_CENTRE_HEADER = "X-Acting-Centre"

ERASURE_CHECK = "tutorpulse.erasure_check"
"""Where a connection's scope carries the application's :class:`ErasureCheck`."""
ACTOR = "tutorpulse.actor"
"""Where a connection's scope keeps its actor (in the acting centre) once it is known: what
opens the sealed texts of an answer reads it (``shared.http.opening``)."""


class ErasedPersonToken(InvalidToken):
    """The token names a person whose data was erased (HTTP 401)."""


def check_erasures(scope: MutableMapping[str, Any], check: ErasureCheck | None) -> None:
    """Make the tokens of erased people stop working on this connection (an ASGI scope)."""
    if check is not None:
        scope[ERASURE_CHECK] = check


_ERASURE_FAILED = "tutorpulse.erasure_unavailable"
"""Where a connection's scope keeps the key store's failure to tell whether its bearer was
erased (:func:`look_up_erasure`): the request is a 503 without waiting on the store again."""

_ERASED = "tutorpulse.erased"
"""Where a connection's scope keeps whether its bearer was erased, as the check told before
the application ran (centre, person, erased): the request is answered by that one answer,
without reading the key store again when the check's memory expires meanwhile."""

_VERIFIED = "tutorpulse.verified_token"
"""Where a request's scope keeps its verified token and actor: the rate limit, the guard and
the handler's ``actor`` all need it, and checking a signature is the dearest part."""


def token_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The actor the bearer token names, as signed (before any ``X-Acting-Centre``); raises
    :class:`InvalidToken` (401), also for an erased person (:class:`ErasedPersonToken`), and
    :class:`ErasureCheckUnavailable` (503) when that cannot be told now. Verified once per
    request."""
    token = _bearer(connection.headers.get("Authorization", ""))
    if token is None:
        raise InvalidToken("send 'Authorization: Bearer <token>'")
    scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
    verified = scope.get(_VERIFIED)
    actor = verified[1] if verified is not None and verified[0] == token else _verify(scope, token)
    erasures: ErasureCheck | None = scope.get(ERASURE_CHECK)
    if erasures is not None:
        failed: ErasureCheckUnavailable | None = scope.get(_ERASURE_FAILED)
        if failed is not None:
            raise failed
        told = scope.get(_ERASED)
        if told is not None and told[:2] == (actor.centre_id, actor.user_id):
            erased = bool(told[2])
        else:
            erased = erasures.erased(actor.centre_id, actor.user_id)
        if erased:
            raise ErasedPersonToken("this person's data was erased: their tokens no longer work")
    return actor


def _bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _verify(scope: MutableMapping[str, Any], token: str) -> Actor:
    actor = verify(token)
    scope[_VERIFIED] = (token, actor)
    bind_actor(actor)
    return actor


async def look_up_erasure(scope: MutableMapping[str, Any]) -> None:
    """Before the application runs: whether the bearer of the connection's token was erased,
    read in a worker thread when the scope's check does not remember, so that
    :func:`token_actor` never waits on the key store in the event loop. An invalid token is
    left for :func:`token_actor` to refuse."""
    erasures: ErasureCheck | None = scope.get(ERASURE_CHECK)
    if erasures is None:
        return
    header = next(
        (value for name, value in scope.get("headers", ()) if name == b"authorization"), b""
    )
    token = _bearer(header.decode("latin-1"))
    if token is None:
        return
    try:
        actor = _verify(scope, token)
    except InvalidToken:
        return
    erased = erasures.known(actor.centre_id, actor.user_id)
    if erased is None:
        try:
            erased = await anyio.to_thread.run_sync(erasures.erased, actor.centre_id, actor.user_id)
        except ErasureCheckUnavailable as error:
            scope[_ERASURE_FAILED] = error
            return
    scope[_ERASED] = (actor.centre_id, actor.user_id, erased)


def bind_actor(actor: Actor) -> None:
    """Every later log line of the request (or websocket) names who: ``centre``, ``actor``
    and ``role`` (shared.observability.access)."""
    structlog.contextvars.bind_contextvars(
        centre=actor.centre_id, actor=str(actor.user_id), role=actor.role.value
    )


def actor_from(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The actor of a request or websocket; raises :class:`InvalidToken` (401)."""
    signed = token_actor(connection)
    actor = signed.acting_in(connection.headers.get(ACTING_CENTRE_HEADER))
    if actor is not signed:
        structlog.contextvars.bind_contextvars(centre=actor.centre_id)
    connection.scope[ACTOR] = actor  # type: ignore[literal-required]
    return actor


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return actor_from(request)


async def permission_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Refuse (401, 403) before the body is even read, for handlers that name a permission in
    ``opt["permission"]``; the command handlers check again, with the resource in hand. (Async
    although it never waits: Litestar runs a plain function guard in a worker thread, a thread
    hop per request for a check of microseconds.)"""
    permission = handler.opt.get("permission")
    if permission is not None:
        require(actor_from(connection), permission)
