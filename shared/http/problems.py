"""Every error a client can cause becomes an RFC 9457 ``application/problem+json`` response."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from shared.tenancy import Forbidden
from shared.tenancy.tokens import InvalidToken

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_FIELD_PATTERNS = (re.compile(r"at `\$\.?([^`]+)`"), re.compile(r"field `([^`]+)`"))


def problem(
    status: int, title: str, detail: str, *, field: str | None = None, headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "status": status, "title": title, "detail": detail}
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
        name = _field_from(message) or (_wire_name(request, key) if key and key != "data" else None) or "body"
        params.append({"name": str(name), "reason": message})
    if not params:
        return problem(400, "Malformed request", str(exc.detail))
    first = params[0]
    response = problem(422, "Invalid request", f"{first['name']}: {first['reason']}", field=first["name"])
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
    title = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="tutorpulse"')
    return problem(exc.status_code, title.get(exc.status_code, "Bad request"), str(exc.detail), headers=headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.failed", path=request.url.path, method=request.method)
    return problem(500, "Internal error", "the request could not be completed; nothing was stored")


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def simple(status: int, title: str) -> ExceptionHandler:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return problem(status, title, str(getattr(exc, "detail", None) or exc),
                       field=getattr(exc, "field", None))

    return handler


def _unauthorized(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return problem(401, "Unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer realm="tutorpulse"'})


BASE_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    ValidationException: _validation,
    NotAuthorizedException: _unauthorized,
    InvalidToken: _unauthorized,
    Forbidden: simple(403, "Forbidden"),
    HTTPException: _http,
    Exception: _unexpected,
}
