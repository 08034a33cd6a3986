"""Who is calling: the bearer token, and for SUPER_ADMIN an explicitly named centre."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared.tenancy import Actor, require
from shared.tenancy.tokens import InvalidToken, verify

ACTING_CENTRE_HEADER = "X-Acting-Centre"


def actor_from(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The actor of a request or websocket; raises :class:`InvalidToken` (401)."""
    header = connection.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("send 'Authorization: Bearer <token>'")
    actor = verify(token.strip())
    return actor.acting_in(connection.headers.get(ACTING_CENTRE_HEADER))


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return actor_from(request)


def permission_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse (401, 403) before the body is even read, for handlers that name a permission in
    ``opt["permission"]``; the command handlers check again, with the resource in hand."""
    permission = handler.opt.get("permission")
    if permission is not None:
        require(actor_from(connection), permission)
