"""Every answer an API test receives is checked against the app's own OpenAPI document: its
status is documented for the operation, its content type is the documented one, its required
headers are there, and a JSON body is valid against the documented schema, with no key the
schema does not name (the published schemas let clients ignore keys added later; the tests do
not let a key go undocumented).

Install it on a test client with :func:`checked`; a mismatch fails the test that made the call.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

import httpx
import jsonschema_rs
from litestar import Litestar
from litestar.testing import TestClient

_PARAMETER = re.compile(r"\{[^/}]+\}")


class Conformance:
    """The answers an OpenAPI document allows, by method and path."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = _closed(document)
        self._validators: dict[str, Any] = {}
        self.routes: list[tuple[str, re.Pattern[str], str]] = []
        for path in sorted(document["paths"], key=lambda p: (p.count("{"), -len(p))):
            pattern = re.compile(
                "^"
                + _PARAMETER.sub("[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
                + "/?$"
            )
            for method in document["paths"][path]:
                self.routes.append((method.upper(), pattern, path))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for known, pattern, template in self.routes:
            if known == method and pattern.match(path):
                return template, self.document["paths"][template][method.lower()]
        return None

    def check(self, response: httpx.Response) -> None:
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None:
            return  # /health, /ready, /metrics, /schema: not operations of the API
        template, operation = found
        where = f"{request.method} {template} → {response.status_code}"
        answer = operation["responses"].get(str(response.status_code))
        assert answer is not None, f"{where}: status not documented ({response.text[:300]})"
        pointer = (
            f"#/paths/{_escape(template)}/{request.method.lower()}/responses/{response.status_code}"
        )
        if "$ref" in answer:
            pointer = answer["$ref"]
            answer = self.resolve(pointer)
        for name, header in (answer.get("headers") or {}).items():
            if "$ref" in header:
                header = self.resolve(header["$ref"])
            if header.get("required"):
                assert name.lower() in response.headers, f"{where}: no {name} header"
        content = answer.get("content") or {}
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        assert media_type in content, f"{where}: {media_type} is not one of {sorted(content)}"
        if media_type != "application/json" and not media_type.endswith("+json"):
            return
        schema = self.validator(f"{pointer}/content/{_escape(media_type)}/schema")
        errors = [str(e) for e in schema.iter_errors(response.json())]
        assert not errors, f"{where}: the body does not match its schema: {errors[:3]}"

    def validator(self, pointer: str) -> Any:
        """A JSON Schema validator of the schema at ``pointer`` (its references resolved in the
        whole document)."""
        if pointer not in self._validators:
            self._validators[pointer] = jsonschema_rs.validator_for(
                {**self.document, "$ref": pointer}, validate_formats=True
            )
        return self._validators[pointer]

    def resolve(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.removeprefix("#/").split("/"):
            node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
        return node


def _closed(node: Any) -> Any:
    """A copy of ``node`` in which every object schema with properties allows no others."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if node.get("type") == "object" and isinstance(node.get("properties"), dict):
        closed.setdefault("additionalProperties", False)
    return closed


def _escape(part: str) -> str:
    """``part`` as one token of a JSON pointer in a URI fragment."""
    return quote(part.replace("~", "~0").replace("/", "~1"), safe="~")


def checked(client: TestClient[Litestar]) -> TestClient[Litestar]:
    """``client``, checking every answer against the app's OpenAPI document."""
    conformance = Conformance(client.app.openapi_schema.to_schema())

    def check(response: httpx.Response) -> None:
        response.read()
        conformance.check(response)

    client.event_hooks = {
        **client.event_hooks,
        "response": [*client.event_hooks.get("response", []), check],
    }
    return client
