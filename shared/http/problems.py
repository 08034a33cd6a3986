"""Every error a client can cause becomes an RFC 9457 ``application/problem+json`` response.

So does a store that cannot be reached: every HTTP service answers 503 with ``Retry-After``
(never a 500, never a hang) when the event store or the read-model store is down, stopped,
out of connections or locked, and the service's outage log records it once (see
``shared.http.operations``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import eventsourcing.persistence as es
import psycopg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from shared.http.operations import describe, readiness_of
from shared.tenancy import Forbidden
from shared.tenancy.tokens import InvalidToken

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_FIELD_PATTERNS = (re.compile(r"at `\$\.?([^`]+)`"), re.compile(r"field `([^`]+)`"))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
        body["invalidParams"] = [{"name": field, "reason": detail}]
    body |= extra
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    params: list[dict[str, str]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        if key == "data" and message == "'data'":  # litestar's KeyError: no body was sent
            message = "the request body is missing; send a JSON object"
        name = (
            _field_from(message)
            or (_wire_name(request, key) if key and key != "data" else None)
            or "body"
        )
        params.append({"name": str(name), "reason": message})
    if not params:
        return problem(400, "Malformed request", str(exc.detail))
    first = params[0]
    response = problem(
        422, "Invalid request", f"{first['name']}: {first['reason']}", field=first["name"]
    )
    response.content["invalidParams"] = params
    return response


def _wire_name(request: Request[Any, Any, Any], name: str) -> str:
    """The name a client sends a parameter by (``tutorId``) rather than the handler's own
    (``tutor_id``)."""
    signature = getattr(request.scope.get("route_handler"), "parsed_fn_signature", None)
    definition = getattr(signature, "parameters", {}).get(name)
    kwarg = getattr(definition, "kwarg_definition", None)
    for alias in ("query", "header", "cookie", "name"):
        if isinstance(value := getattr(kwarg, alias, None), str):
            return value
    return name


def _field_from(message: str) -> str | None:
    for pattern in _FIELD_PATTERNS:
        if match := pattern.search(message):
            return match.group(1)
    return None


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return _unexpected(request, exc)
    title = {
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
    }
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="tutorpulse"')
    return problem(
        exc.status_code, title.get(exc.status_code, "Bad request"), str(exc.detail), headers=headers
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.failed", path=request.url.path, method=request.method)
    return problem(500, "Internal error", "the request could not be completed; nothing was stored")


RETRY_AFTER_SECONDS = 2
"""What a client is told to wait before retrying when a store cannot be reached."""
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def store_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says a store cannot be reached now (and trying later may work), as
    opposed to a bug: PostgreSQL down, restarting, refusing connections, out of pooled
    connections (``psycopg_pool.PoolTimeout``), a statement or lock timeout; SQLite locked."""
    if isinstance(error, es.PersistenceError) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, sqlite3.OperationalError):
        return any(text in str(error) for text in _SQLITE_BUSY)
    return isinstance(
        error,
        (es.OperationalError, es.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError),
    )


def _store_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if not store_unavailable(exc):
        return _unexpected(request, exc)
    readiness = readiness_of(request)
    if readiness is not None:
        readiness.request_failed(f"store unreachable: {describe(exc)}")
    return problem(
        503,
        "Service unavailable",
        f"the data store cannot be reached now; retry in {RETRY_AFTER_SECONDS} s (a command "
        "retried with the same Idempotency-Key is applied at most once)",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def simple(status: int, title: str) -> ExceptionHandler:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return problem(
            status,
            title,
            str(getattr(exc, "detail", None) or exc),
            field=getattr(exc, "field", None),
        )

    return handler


def _unauthorized(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return problem(
        401, "Unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer realm="tutorpulse"'}
    )


BASE_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    ValidationException: _validation,
    NotAuthorizedException: _unauthorized,
    InvalidToken: _unauthorized,
    Forbidden: simple(403, "Forbidden"),
    HTTPException: _http,
    # A form field without a file name that is not UTF-8 text (Litestar decodes such parts).
    UnicodeDecodeError: simple(400, "Malformed request"),
    es.OperationalError: _store_unavailable,
    es.InterfaceError: _store_unavailable,
    psycopg.OperationalError: _store_unavailable,  # with psycopg_pool.PoolTimeout
    psycopg.InterfaceError: _store_unavailable,
    sqlite3.OperationalError: _store_unavailable,
    Exception: _unexpected,
}
