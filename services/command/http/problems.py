"""Domain errors as problem details: one table of statuses, and the wire name of the field.

The domain and the handlers name a field by its own name, the command's attribute path
(``records[2].student_id``); a client knows it by the name it sent (``records[2].studentId``).
:func:`wire_field` translates one into the other with the command's own type, so a dict's keys
(question ids, exercise ids) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec
import structlog
from litestar import Request, Response

from services.command.domain.aggregate import (
    DomainError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    RuleViolated,
)
from services.command.handlers.paper import PaperNotSetUp
from services.command.idempotency import KeyReused
from services.command.unit_of_work import ConcurrentUpdate
from shared.blobs.store import BlobStoreUnavailable
from shared.http.problems import RETRY_AFTER_SECONDS, ExceptionHandler, problem
from shared.paper.scans import ScanRejected

log = structlog.get_logger(__name__)

COMMAND = "command"
"""The ``opt`` key of a route handler that names its command type."""

_SEGMENT = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def wire_field(command: type[msgspec.Struct] | None, field: str) -> str:
    """The name a client sent ``field`` by, for a request carrying ``command``."""
    kind: Any = command
    parts: list[str] = []
    for match in _SEGMENT.finditer(field):
        index, name = match.groups()
        kind = _unwrapped(kind)
        if index is not None:
            parts.append(f"[{index}]")
            kind = _element(kind)
            continue
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            found = {f.name: f for f in msgspec.structs.fields(kind)}.get(name)
            if found is not None:
                parts.append(("." if parts else "") + found.encode_name)
                kind = get_type_hints(kind)[name]
                continue
        if get_origin(kind) is dict:  # a key (and whatever follows it) is the client's own
            parts.append(("." if parts else "") + field[match.start(2) :])
            break
        parts.append(("." if parts else "") + _camel(name))
        kind = None
    return "".join(parts)


def _unwrapped(kind: Any) -> Any:
    """``T`` for ``T | None``."""
    if get_origin(kind) in (Union, type(int | None)):
        options = [a for a in get_args(kind) if a is not type(None)]
        return options[0] if len(options) == 1 else None
    return kind


def _element(kind: Any) -> Any:
    return get_args(kind)[0] if get_origin(kind) in (list, tuple) and get_args(kind) else None


def _camel(name: str) -> str:
    """A name of the domain's that the command does not know, as msgspec would rename it."""
    if not name.isidentifier():
        return name
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def domain_problem(status: int, title: str) -> ExceptionHandler:
    def handler(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
        field = error.field
        if field is not None:
            route = request.scope.get("route_handler")
            field = wire_field(route.opt.get(COMMAND) if route is not None else None, field)
        return problem(status, title, error.detail, field=field)

    return handler


def _problem(status: int, title: str) -> ExceptionHandler:
    def handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        return problem(status, title, str(error))

    return handler


_SCAN_TITLES = {413: "File too large", 415: "Unsupported file type", 422: "Unreadable file"}


def _scan_rejected(request: Request[Any, Any, Any], error: ScanRejected) -> Response[Any]:
    return problem(
        error.status, _SCAN_TITLES.get(error.status, "Invalid file"), str(error), field=error.field
    )


def _unavailable(what: str) -> ExceptionHandler:
    def handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        log.warning("paper.unavailable", what=what, error=str(error))
        return problem(
            503,
            "Service unavailable",
            f"{what}; retry in {RETRY_AFTER_SECONDS} s",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler


EXCEPTION_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    InvalidValue: domain_problem(422, "Invalid value"),
    InvalidTransition: domain_problem(409, "Invalid transition"),
    RuleViolated: domain_problem(409, "Conflict"),
    NotFound: domain_problem(404, "Not found"),
    ConcurrentUpdate: _problem(409, "Concurrent update"),
    KeyReused: _problem(422, "Idempotency-Key reused"),
    ScanRejected: _scan_rejected,
    PaperNotSetUp: _unavailable("paper work is not set up here"),
    BlobStoreUnavailable: _unavailable("the blob store cannot be reached now"),
}
"""How each error of the command side answers."""
