"""Both APIs answer as their OpenAPI documents say (schemathesis, in process).

Every answer to a generated request (valid and invalid bodies, parameters and headers, each
sent by one role after another) must not be a server error, must have a documented status and
content type, carry the documented required headers, and have a body valid against the
documented schema.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract.conftest import Callers, command_schema, query_schema

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

command = command_schema()
query = query_schema()

# schemathesis annotates parametrize() as returning a bare Callable: the decorator is untyped.


@command.parametrize()  # type: ignore[untyped-decorator]
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the app, not the data
def test_the_command_api_answers_as_documented(
    case: Any, callers: Callers, command_api: Litestar
) -> None:
    callers.prepare(case)
    case.call_and_validate(checks=CHECKS, app=command_api)


@query.parametrize()  # type: ignore[untyped-decorator]
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_query_api_answers_as_documented(
    case: Any, callers: Callers, query_api: Litestar
) -> None:
    callers.prepare(case)
    case.call_and_validate(checks=CHECKS, app=query_api)
