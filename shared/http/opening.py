"""Sealed texts opened at the edge: every JSON answer of an API leaves with the personal texts
in it opened for the centre of the caller (``docs/privacy.md``).

What tutorpulse keeps (events, read models, receipts) holds personal texts only sealed
(``pd1.…``, :mod:`shared.privacy.cipher`); :class:`OpenSealed` wraps an application's ASGI
handler and, on the way out, opens every sealed text in the body of an answer whose content is
JSON (``application/json``, ``problem+json``, JSON Lines), for the acting centre of the actor
the request authenticated as (:data:`shared.http.auth.ACTOR`): another centre's texts read
``[unreadable]``, an erased person's ``[erased]`` (:class:`shared.privacy.Revealer`).

- An answer without an actor (``/health``, ``/schema``, a 401) goes out untouched.
- A body in one message: opened, and its ``Content-Length`` set to the opened length.
- A streamed body (the SessionLog's JSON Lines, the subject-access export): opened a line at a
  time as it goes (a sealed text never holds a newline; a chunk's unfinished last line waits
  for the next chunk), without a ``Content-Length``.
- A body without ``pd1.`` costs one ``in`` check; one with sealed texts is opened in a worker
  thread (opening may read a key from the key store). When the key store cannot be read, a
  body in one message is answered with a 503 problem instead (a streamed one is cut short).

It also puts the application's :class:`~shared.privacy.erasure.ErasureCheck` in every
connection's scope, so the tokens of erased people stop working (:mod:`shared.http.auth`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
import msgspec
import structlog

from shared.http.auth import ACTOR, check_erasures, look_up_erasure
from shared.http.operations import describe
from shared.http.problems import PROBLEM_JSON
from shared.privacy.erasure import ErasureCheck
from shared.privacy.reveal import MARK, Revealer
from shared.tenancy import Actor

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
_UNOPENABLE = msgspec.json.encode(
    {
        "type": "about:blank",
        "status": 503,
        "title": "Service unavailable",
        "detail": "the key store cannot be read now, so the answer cannot be opened; retry in "
        f"{RETRY_AFTER_SECONDS} s",
    }
)
_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"
_JSON = b"json"
_NEWLINE = b"\n"


def _is_json(headers: list[Any]) -> bool:
    for name, value in headers:
        if name.lower() == _CONTENT_TYPE:
            return _JSON in value.lower()
    return False


def _with_length(headers: list[Any], length: int | None) -> list[Any]:
    """``headers`` with ``Content-Length`` set to ``length`` (None: removed)."""
    kept = [(name, value) for name, value in headers if name.lower() != _CONTENT_LENGTH]
    if length is not None:
        kept.append((_CONTENT_LENGTH, str(length).encode("ascii")))
    return kept


def opening(revealer: Revealer, erasures: ErasureCheck | None) -> Callable[[Any], Any]:
    """What wraps an application's ASGI handler in :class:`OpenSealed`."""
    return lambda app: OpenSealed(app, revealer, erasures)


class OpenSealed:
    """See the module. ``erasures``: put in every connection's scope (None: no check)."""

    def __init__(
        self, app: ASGIApp, revealer: Revealer, erasures: ErasureCheck | None = None
    ) -> None:
        self.app = app
        self.revealer = revealer
        self.erasures = erasures

    async def open(self, body: bytes, centre_id: str) -> bytes:
        """``body`` with its sealed texts opened for ``centre_id``."""
        if MARK not in body:
            return body
        return await anyio.to_thread.run_sync(self.revealer.json, body, centre_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            check_erasures(scope, self.erasures)
            await look_up_erasure(scope)
        if kind != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        """The answer's start, held until its first body message says how long it is."""
        streaming = False
        rest = b""
        """The unfinished last line of a streamed chunk."""

        async def answer(message: Message) -> None:
            nonlocal held, streaming, rest
            what = message["type"]
            if what == "http.response.start":
                actor = scope.get(ACTOR)
                if isinstance(actor, Actor) and _is_json(list(message.get("headers", ()))):
                    held = message
                    return
                await send(message)
                return
            if what != "http.response.body" or held is None:
                await send(message)
                return
            centre = scope[ACTOR].centre_id
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if not streaming and not more:
                try:
                    opened = await self.open(body, centre)
                except Exception as error:  # the key store: what else could fail opening
                    log.warning("answer.unopenable", error=describe(error))
                    await _unavailable(send)
                    return
                if opened is not body:
                    held["headers"] = _with_length(list(held.get("headers", ())), len(opened))
                await send(held)
                await send({"type": "http.response.body", "body": opened, "more_body": False})
                return
            if not streaming:
                streaming = True
                held["headers"] = _with_length(list(held.get("headers", ())), None)
                await send(held)
            data = rest + body if rest else body
            if more:
                end = data.rfind(_NEWLINE) + 1
                data, rest = data[:end], data[end:]
            else:
                rest = b""
            if data or not more:
                opened = await self.open(data, centre)
                await send({"type": "http.response.body", "body": opened, "more_body": more})

        await self.app(scope, receive, answer)


async def _unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (_CONTENT_TYPE, PROBLEM_JSON.encode("ascii")),
                (_CONTENT_LENGTH, str(len(_UNOPENABLE)).encode("ascii")),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNOPENABLE, "more_body": False})
