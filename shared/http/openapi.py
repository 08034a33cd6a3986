"""What every operation of a tutorpulse API documents besides its own answer, stated once.

An API describes itself with a :class:`Contract`: the problems any of its operations may
answer, the headers its successful answers carry and the headers a request may send.
:func:`document` completes every route of an app from it and from what the route itself says
(a body, ids in its path, ``opt["problems"]``): each problem status with the one
``application/problem+json`` schema (:class:`Problem`) and an example, ``Retry-After`` on 429
and 503, ``WWW-Authenticate`` on 401, and the headers of the contract. Litestar's default 400
(its own error shape, which these APIs never send) is dropped where no 400 can happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)
from msgspec import UNSET, UnsetType

from shared.tenancy.actor import CENTRE_ID_PATTERN

PROBLEM_JSON = "application/problem+json"


class InvalidParam(msgspec.Struct, frozen=True):
    """One value of the request at fault."""

    name: Annotated[
        str,
        msgspec.Meta(
            description="The field as the client sent it (`records[2].studentId`), a query "
            "parameter, a header, or `body`"
        ),
    ]
    reason: str


class Problem(msgspec.Struct, frozen=True, rename="camel"):
    """An RFC 9457 problem: what went wrong, and, when one value is at fault, which."""

    type: Annotated[str, msgspec.Meta(description="Always `about:blank`: `status` says it all")]
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    title: Annotated[
        str, msgspec.Meta(description="A short summary, the same for every problem of its kind")
    ]
    detail: Annotated[str, msgspec.Meta(description="What happened, for a person to read")]
    field: str | UnsetType = UNSET
    """The value at fault, named as the client sent it."""
    invalid_params: list[InvalidParam] | UnsetType = UNSET
    """Every value at fault (the first is ``field``)."""


@dataclass(frozen=True)
class Header:
    """A header of requests or answers, as the OpenAPI document describes it."""

    name: str
    description: str
    schema: Schema
    required: bool = False

    def for_answer(self) -> OpenAPIHeader:
        return OpenAPIHeader(
            schema=self.schema, description=self.description, required=self.required
        )

    def reference(self) -> Reference:
        """Where answers find it: ``components/headers`` (see
        :meth:`Contract.header_components`)."""
        return Reference(ref=f"#/components/headers/{self.name}")

    def for_request(self) -> Parameter:
        return Parameter(
            name=self.name,
            param_in="header",
            schema=self.schema,
            description=self.description,
            required=self.required,
        )


_INTEGER = Schema(type=OpenAPIType.INTEGER, minimum=0)
_SECONDS = Schema(type=OpenAPIType.INTEGER, minimum=1)

ACTING_CENTRE = Header(
    "X-Acting-Centre",
    "SUPER_ADMIN only: the centre to act in (any other role naming another centre than its "
    "token's is refused with 403).",
    Schema(type=OpenAPIType.STRING, pattern=CENTRE_ID_PATTERN),
)
POSITION = Header(
    "X-Tutorpulse-Position",
    "The notification id the read side must reach to reflect this command (also `position` "
    "in the body); give it to the query API to read your own write.",
    _INTEGER,
    required=True,
)
REPLAYED = Header(
    "Idempotent-Replayed",
    "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key: nothing was appended.",
    Schema(type=OpenAPIType.STRING, enum=["true"]),
)
WATERMARK = Header(
    "X-Tutorpulse-Watermark",
    "The notification id up to which the answer reflects the event store.",
    _INTEGER,
    required=True,
)
REQUEST_ID = Header(
    "X-Request-Id",
    "The request's id: the caller's own `X-Request-Id` if it is 1-128 letters, digits or "
    "`._~:+/=@-`, otherwise one made for it. It is on every log line of the request and in "
    "the metadata of the events a command stores: quote it when reporting a problem.",
    Schema(
        type=OpenAPIType.STRING, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._~:+/=@-]+$"
    ),
    required=True,
)
"""Sent by every answer of every API (``shared.observability.access``)."""
REQUEST_ID_SENT = Header(
    "X-Request-Id",
    "An id for this request, to find it in the logs and in the events it stores; one that is "
    "longer than 128 characters or holds other characters than letters, digits and "
    "`._~:+/=@-` is replaced by one made for the request (the answer says which).",
    Schema(type=OpenAPIType.STRING),
)
RETRY_AFTER = Header("Retry-After", "Seconds to wait before trying again.", _SECONDS, required=True)
WWW_AUTHENTICATE = Header(
    "WWW-Authenticate",
    '`Bearer realm="tutorpulse"`.',
    Schema(type=OpenAPIType.STRING),
    required=True,
)
RATE_LIMIT = (
    Header(
        "RateLimit-Policy",
        "The caller's limit and its window (`600; w=60`).",
        Schema(type=OpenAPIType.STRING),
    ),
    Header("RateLimit-Limit", "Requests allowed per window.", _INTEGER),
    Header("RateLimit-Remaining", "Requests left in this window.", _INTEGER),
    Header("RateLimit-Reset", "Seconds until the window ends.", _INTEGER),
)
"""Sent by every answer of an API with per-caller rate limits."""


@dataclass(frozen=True)
class Status:
    name: str
    """Of the answer in ``components/responses``."""
    description: str
    example: Problem
    headers: tuple[Header, ...] = ()


def _problem_example(status: int, title: str, detail: str, field: str | None = None) -> Problem:
    if field is None:
        return Problem(type="about:blank", status=status, title=title, detail=detail)
    return Problem(
        type="about:blank",
        status=status,
        title=title,
        detail=detail,
        field=field,
        invalid_params=[InvalidParam(field, detail.removeprefix(f"{field}: "))],
    )


STATUSES: Mapping[int, Status] = {
    400: Status(
        "BadRequest",
        "The body is not JSON.",
        _problem_example(400, "Bad request", "JSON is malformed: invalid character (byte 1)"),
    ),
    401: Status(
        "Unauthorized",
        "No bearer token, or an expired, forged or malformed one, or one for another audience.",
        _problem_example(401, "Unauthorized", "send 'Authorization: Bearer <token>'"),
        (WWW_AUTHENTICATE,),
    ),
    403: Status(
        "Forbidden",
        "The caller's role may not do this, to this resource, or in that centre.",
        _problem_example(403, "Forbidden", "PARENT may not session:schedule"),
    ),
    404: Status(
        "NotFound",
        "Nothing by that id in the caller's centre that they may see "
        "(another centre's are not found either).",
        _problem_example(404, "Not found", "no such session"),
    ),
    409: Status(
        "Conflict",
        "The resource is not in a state that allows this, a rule would be "
        "broken, or others kept changing it (retry).",
        _problem_example(409, "Invalid transition", "a COMPLETED session cannot be started"),
    ),
    413: Status(
        "TooLarge",
        "The body is larger than 2 MiB.",
        _problem_example(413, "Request too large", "Request Entity Too Large"),
    ),
    415: Status(
        "UnsupportedMediaType",
        "A file is not of a type accepted here (`field` names it).",
        _problem_example(
            415,
            "Unsupported file type",
            "send a photo (JPEG, PNG, WebP) or a PDF",
            field="files[0]",
        ),
    ),
    422: Status(
        "InvalidRequest",
        "A value is invalid: `field` names it.",
        _problem_example(
            422, "Invalid request", "startsAt: Invalid RFC3339 encoded datetime", field="startsAt"
        ),
    ),
    429: Status(
        "TooManyRequests",
        "The caller sent too many requests; `Retry-After` says when to try again.",
        _problem_example(
            429, "Too many requests", "too many requests from this caller; try again in 42 s"
        ),
        (RETRY_AFTER,),
    ),
    503: Status(
        "Unavailable",
        "A store cannot be reached or the identity provider's keys are "
        "not at hand; `Retry-After` says when to try again.",
        _problem_example(
            503, "Service unavailable", "the data store cannot be reached now; retry in 2 s"
        ),
        (RETRY_AFTER,),
    ),
}
"""What each problem status means, with an example, and the headers it always carries."""


@dataclass(frozen=True)
class Contract:
    """What every operation of one API documents besides its own success answer."""

    problems: frozenset[int]
    """Statuses any operation may answer with."""
    with_body: frozenset[int] = frozenset({400})
    """Statuses an operation that takes a body may answer with as well."""
    with_path_ids: frozenset[int] = frozenset({404})
    """Statuses an operation with ids in its path may answer with as well."""
    answer_headers: tuple[Header, ...] = ()
    """Headers of every answer (2xx and problems)."""
    success_headers: tuple[Header, ...] = ()
    """Headers of every 2xx answer."""
    request_headers: tuple[Header, ...] = (ACTING_CENTRE,)
    """Headers any request may send, beyond the ones a route names itself."""
    descriptions: Mapping[int, str] = field(default_factory=dict)
    """What a status means in this API, where it says more than :data:`STATUSES`."""

    def statuses(self, handler: HTTPRouteHandler, path_ids: bool) -> list[int]:
        """The problem statuses ``handler`` may answer with."""
        found = set(self.problems) | set(handler.opt.get("problems", ()))
        if "data" in handler.parsed_fn_signature.parameters:
            found |= self.with_body
        if path_ids:
            found |= self.with_path_ids
        return sorted(found)

    def response_components(self) -> dict[str, OpenAPIResponse | Reference]:
        """One answer per problem status, for ``components/responses``."""
        statuses = sorted(self.problems | self.with_body | self.with_path_ids)
        return {
            STATUSES[status].name: OpenAPIResponse(
                description=self.descriptions.get(status, STATUSES[status].description),
                headers={
                    h.name: h.reference() for h in (*self.answer_headers, *STATUSES[status].headers)
                }
                or None,
                content={
                    PROBLEM_JSON: OpenAPIMediaType(
                        schema=Reference(ref="#/components/schemas/Problem"),
                        examples={
                            STATUSES[status].name: Example(
                                summary=STATUSES[status].example.title,
                                value=msgspec.to_builtins(STATUSES[status].example),
                            )
                        },
                    )
                },
            )
            for status in statuses
        }

    def header_components(self) -> dict[str, OpenAPIHeader | Reference]:
        """Every header an answer of this API may carry, for ``components/headers``."""
        statuses = self.problems | self.with_body | self.with_path_ids
        headers = (
            *self.answer_headers,
            *self.success_headers,
            *(h for status in sorted(statuses) for h in STATUSES[status].headers),
        )
        return {header.name: header.for_answer() for header in headers}

    def operation_class(self) -> type[Operation]:
        contract = self

        class DocumentedOperation(Operation):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                contract.complete(self)

        return DocumentedOperation

    def complete(self, operation: Operation) -> None:
        """Request headers; success headers; every problem by reference to its answer in
        ``components/responses``; no 400 of Litestar's own shape (which is never sent)."""
        named = {p.name.lower() for p in operation.parameters or () if isinstance(p, Parameter)}
        extra = [h.for_request() for h in self.request_headers if h.name.lower() not in named]
        if extra:
            operation.parameters = [*(operation.parameters or ()), *extra]
        responses = operation.responses or {}
        for code, response in list(responses.items()):
            if not isinstance(response, OpenAPIResponse):
                continue
            status = int(code)
            if status < 400:
                response.headers = {
                    **(response.headers or {}),
                    **{
                        h.name: h.reference() for h in (*self.answer_headers, *self.success_headers)
                    },
                }
            elif PROBLEM_JSON in (response.content or {}):
                responses[code] = Reference(ref=f"#/components/responses/{STATUSES[status].name}")
            else:
                del responses[code]


def document(app: Litestar, contract: Contract) -> None:
    """Complete every operation of ``app`` by ``contract`` (before its OpenAPI document is
    first built; its ``components`` need ``contract.header_components()`` and
    ``contract.response_components()``): its problems, headers, and an example of its answer
    (:func:`example_of` its type, unless the route gives one)."""
    operation_class = contract.operation_class()
    for route in app.routes:
        path_ids = bool(getattr(route, "path_parameters", ()))
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            # Described here so that Litestar registers the Problem schema; ``complete``
            # replaces each by a reference to its answer in ``components/responses``.
            responses: dict[int, ResponseSpec] = {
                status: ResponseSpec(
                    data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False
                )
                for status in contract.statuses(handler, path_ids)
            }
            responses.update(handler.responses or {})
            success = _success(handler)
            if success is not None:
                responses[handler.status_code] = success
            handler.responses = responses
            handler.operation_class = operation_class


def _success(handler: HTTPRouteHandler) -> ResponseSpec | None:
    """The route's success answer with an example: as the route describes it, or as its
    return annotation (``Response[T]``) says."""
    spec = (handler.responses or {}).get(handler.status_code)
    if spec is None:
        returned = handler.parsed_fn_signature.return_type
        inner = returned.inner_types[0].annotation if returned.inner_types else None
        if not (isinstance(inner, type) and issubclass(inner, msgspec.Struct)):
            return None
        spec = ResponseSpec(
            data_container=inner,
            generate_examples=False,
            description=(handler.response_description or HTTPStatus(handler.status_code).phrase),
        )
    if spec.examples or not (
        isinstance(spec.data_container, type) and issubclass(spec.data_container, msgspec.Struct)
    ):
        return spec
    return replace(
        spec, examples=[Example(summary="An answer", value=example_of(spec.data_container))]
    )


# --- examples of answers ---------------------------------------------------------------------

_EXAMPLE_ID = "3f6c2a9e-8d4b-4c1e-9a7f-2b5d8e1c4a60"
_EXAMPLE_TIME = "2030-03-04T16:00:00+00:00"
_EXAMPLE_TEXT: Mapping[str, str] = {
    "centreId": "main-campus",
    "courseId": "maths",
    "lessonId": "fractions-2",
    "questionId": "q1",
    "title": "Fractions clinic",
    "name": "Jane Johnson",
    "timeZone": "Europe/London",
    "date": "2030-03-04",
    "message": "Stuck on 2b",
    "meetingLink": "https://meet.example.org/fractions",
    "location": "Room 2",
    "subject": "Mathematics",
    "next": "WzAsIjIwMzAtMDMtMDRUMTY6MDA6MDBaIiwiYyJd",
}


def example_of(kind: Any) -> Any:
    """A plausible value of ``kind`` (a msgspec struct or any type msgspec knows), the same
    every time: the example of an answer in the OpenAPI document. Optional fields are shown;
    a union shows its first type."""
    return _value_of(msgspec.inspect.type_info(kind), "")


def _value_of(info: msgspec.inspect.Type, name: str) -> Any:
    inspect = msgspec.inspect
    if isinstance(info, inspect.Metadata):
        return _value_of(info.type, name)
    if isinstance(info, inspect.StructType):
        shown = {
            f.encode_name: f.default if _is_value(f.default) else _value_of(f.type, f.encode_name)
            for f in info.fields
        }
        return {info.tag_field: info.tag, **shown} if info.tag_field else shown
    if isinstance(info, inspect.UnionType):
        options = [
            t for t in info.types if not isinstance(t, inspect.NoneType | inspect.CustomType)
        ]
        return _value_of(options[0], name) if options else None
    if isinstance(info, inspect.ListType | inspect.SetType | inspect.VarTupleType):
        return [_value_of(info.item_type, name)]
    if isinstance(info, inspect.DictType):
        key = _value_of(info.key_type, "key")
        return (
            {}
            if isinstance(info.value_type, inspect.AnyType)
            else {str(key): _value_of(info.value_type, name)}
        )
    if isinstance(info, inspect.EnumType):
        return next(iter(info.cls)).value
    if isinstance(info, inspect.LiteralType):
        return info.values[0]
    if isinstance(info, inspect.IntType | inspect.FloatType):
        low = info.ge if info.ge is not None else info.gt + 1 if info.gt is not None else 1
        return type(low)(low) if isinstance(info, inspect.IntType) else float(low)
    if isinstance(info, inspect.BoolType):
        return True
    if isinstance(info, inspect.UUIDType):
        return _EXAMPLE_ID
    if isinstance(info, inspect.DateTimeType):
        return _EXAMPLE_TIME
    if isinstance(info, inspect.DateType):
        return _EXAMPLE_TIME[:10]
    if isinstance(info, inspect.StrType):
        return _example_text(name)
    return None


def _is_value(default: Any) -> bool:
    return (
        default is not msgspec.NODEFAULT
        and default is not UNSET
        and isinstance(default, str | int | float | bool)
    )


def _example_text(name: str) -> str:
    if name in _EXAMPLE_TEXT:
        return _EXAMPLE_TEXT[name]
    if name.endswith("Title"):
        return _EXAMPLE_TEXT["title"]
    if name.endswith(("Name", "Names")):
        return _EXAMPLE_TEXT["name"]
    if name.endswith("At") or name in ("at", "from", "to", "dueBefore", "dueAfter"):
        return _EXAMPLE_TIME
    if name.endswith(("Id", "By", "Ids", "students")):
        return _EXAMPLE_ID
    return name or "text"
