"""The one HTTP adapter of the command API: a route's body and path ids become its command.

For each :class:`~services.command.http.routes.Route`, :func:`route_handler` builds a Litestar
handler whose signature names the path ids, the body (the command's other fields: the command
itself when the path carries none), the ``Idempotency-Key`` header and the answer
(the verb's response struct with ``position``), so the generated OpenAPI document describes
each of them. The handler fills in the command, runs it off the event loop, and answers.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import msgspec
from litestar import Request, Response, route
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, BodyKwarg, HeaderParameter, PathParameter, QueryParameter

from services.command.application import TutoringCentres
from services.command.bus import VERBS, Verb
from services.command.commands.base import Command, Part
from services.command.http.examples import BODIES
from services.command.http.fast import FAST, RAISED, FastRoute, idempotency_of
from services.command.http.problems import COMMAND
from services.command.http.routes import ROUTES, Route
from services.command.idempotency import MAX_KEY_LENGTH
from services.command.metrics import COMMANDS
from services.command.responses import answer_type
from services.command.unit_of_work import CommandResult
from shared.http.auth import actor_from
from shared.http.openapi import example_of
from shared.threads import WorkerThreads

POSITION_HEADER = "X-Tutorpulse-Position"
REPLAYED_HEADER = "Idempotent-Replayed"
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="Retrying with the same key (from the same person) returns the first answer "
        "and appends nothing; the same key with another request is a 422.",
    ),
]
_PATH_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
T = TypeVar("T")

COMMAND_THREADS = 40
"""Commands of one process running at once (as many as anyio's default worker threads): they
wait on PostgreSQL, and concurrent ones share a commit (``shared.eventstore.group_commit``)."""
_COMMAND_THREADS = WorkerThreads(COMMAND_THREADS, "command")


async def in_command_thread(call: Callable[[], T]) -> T:
    """``call()`` in one of the threads that run commands, with this task's context variables
    (its log bindings). Not ``anyio.to_thread.run_sync`` (85 µs of CPU per call, its cancel
    scope, limiter and queue), nor ``run_in_executor`` (32 µs): see
    :mod:`shared.threads`."""
    return await _COMMAND_THREADS.run(call)


def route_handlers(centres: TutoringCentres) -> list[HTTPRouteHandler]:
    return [route_handler(r, centres) for r in ROUTES]


def route_handler(spec: Route, centres: TutoringCentres) -> HTTPRouteHandler:
    """The route's handler, running its commands on ``centres``. It takes no dependency:
    Litestar resolves two or more of a handler's dependencies in a task group of their own, a
    tenth of the command service's CPU per request in a profile, and the actor is the one the
    guard already verified."""
    verb = VERBS[spec.command]
    hints = get_type_hints(spec.command, include_extras=True)
    in_path = [name for name, _ in _PATH_PARAMETER.findall(spec.path)]
    body = body_type(spec.command, {*in_path, *spec.query})

    async def endpoint(
        request: Request[Any, Any, Any],
        idempotency_key: str | None = None,
        data: Part | None = None,
        **parameters: Any,
    ) -> Response[Any]:
        raised = request.scope.pop(RAISED, None)  # type: ignore[misc]
        if raised is not None:  # the command ran on the fast path and failed: answer that
            raise raised
        actor = actor_from(request)
        fields = parameters if data is None else parameters | msgspec.structs.asdict(data)
        command = spec.command(**fields)
        key = (
            None
            if idempotency_key is None
            else idempotency_of(request, idempotency_key, [await request.body()])
        )
        result = await in_command_thread(lambda: centres.handle(actor, command, idempotency=key))
        return command_answer(result, verb)

    parameters = [
        _parameter("request", Request[Any, Any, Any]),
        *(_parameter(name, _annotated(hints[name], PathParameter())) for name in in_path),
        *(_parameter(name, _query_parameter(hints[name]), None) for name in spec.query),
        *([_parameter("data", _annotated(body, _body(spec.command)))] if body is not None else []),
        _parameter("idempotency_key", IdempotencyHeader, None),
    ]
    answer = _response_of(answer_type(verb.answers))
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=answer
    )
    endpoint.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": answer}
    endpoint.__name__ = endpoint.__qualname__ = verb.name
    endpoint.__doc__ = spec.command.__doc__ or verb.handler.__doc__
    return route(
        spec.path,
        http_method=spec.method,
        status_code=verb.status,
        responses={status: _also(verb, status) for status in verb.also} or None,
        summary=spec.summary,
        operation_id=_camel(verb.name),
        tags=[spec.tag],
        opt=_options(verb, spec)
        | {FAST: FastRoute.of(spec, verb, body, [(name, hints[name]) for name in in_path])},
    )(endpoint)


def body_type(command: type[Command], elsewhere: set[str]) -> type[Part] | None:
    """What a client sends as the body of ``command``: every field not sent ``elsewhere`` (in
    the path or the query), with the same names, limits and defaults; ``None`` if nothing."""
    if not elsewhere:
        return command
    hints = get_type_hints(command, include_extras=True)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(command):
        if field.name in elsewhere:
            continue
        if field.default is not msgspec.NODEFAULT:
            fields.append((field.name, hints[field.name], field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (
                    field.name,
                    hints[field.name],
                    msgspec.field(default_factory=field.default_factory),
                )
            )
        else:
            fields.append((field.name, hints[field.name]))
    if not fields:
        return None
    body: Any = msgspec.defstruct(
        command.__name__,
        fields,
        bases=(Part,),
        module=command.__module__,
        kw_only=True,
        frozen=True,
        rename="camel",
        forbid_unknown_fields=True,
    )
    body.__doc__ = command.__doc__
    return body  # type: ignore[no-any-return]


def command_answer(result: CommandResult, verb: Verb[Any]) -> Response[Any]:
    """A command's answer: its body with ``position``, the position header, and whether it is
    the replay of an earlier answer; counted by verb and outcome."""
    COMMANDS.labels(command=verb.name, outcome="replayed" if result.replayed else "ok").inc()
    headers = {POSITION_HEADER: str(result.position)}
    if result.replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(
        {**result.body, "position": result.position},
        status_code=result.status_code,
        headers=headers,
    )


def _body(command: type[Command]) -> BodyKwarg:
    """The body parameter, with its example (:data:`~services.command.http.examples.BODIES`)."""
    example = BODIES.get(command)
    body: BodyKwarg = Body(
        media_type=RequestEncodingType.JSON,
        examples=None if example is None else [Example(summary=command.__name__, value=example)],
    )
    return body


def _query_parameter(annotation: Any) -> Any:
    """An optional query parameter of the field's type, with the limits its ``msgspec.Meta``
    states (Litestar checks a query parameter's limits from its own definition)."""
    limits: dict[str, Any] = {}
    for part in (annotation, *get_args(annotation)):
        if get_origin(part) is Annotated:
            for meta in part.__metadata__:
                if isinstance(meta, msgspec.Meta):
                    limits |= {
                        name: getattr(meta, name)
                        for name in _LIMITS
                        if getattr(meta, name) is not None
                    }
    return _annotated(annotation, QueryParameter(required=False, **limits))


_LIMITS = ("min_length", "max_length", "ge", "gt", "le", "lt", "pattern")


def _options(verb: Verb[Any], spec: Route) -> dict[str, Any]:
    """What the guards, middleware and error handlers read: the permission (of the verb's
    table entry), the command (whose field names a problem translates) and the rate limit that
    counts the route."""
    options: dict[str, Any] = {"permission": verb.permission, COMMAND: spec.command}
    if spec.rate_limit is not None:
        options["rate_limit"] = spec.rate_limit
    return options


def _also(verb: Verb[Any], status: int) -> ResponseSpec:
    """The verb's answer at another of its success statuses (:attr:`Verb.also`)."""
    answer = answer_type(verb.answers)
    return ResponseSpec(
        data_container=answer,
        generate_examples=False,
        description=HTTPStatus(status).phrase,
        examples=[Example(summary="An answer", value=example_of(answer))],
    )


def _annotated(annotation: Any, marker: Any) -> Any:
    """``Annotated[annotation, marker]``, for an annotation known only at run time."""
    return Annotated[annotation, marker]


def _response_of(answer: type[msgspec.Struct]) -> Any:
    return Response[answer]  # type: ignore[valid-type]


def _parameter(
    name: str, annotation: Any, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)
