"""uvicorn's HTTP protocol, writing an answer of known length to the socket once.

uvicorn (``httptools``) writes an answer's status line and headers when the application sends
``http.response.start``, and its body when it sends ``http.response.body``: two writes to the
transport, which on an idle socket are two ``send`` system calls. A loopback ``send`` costs tens
of µs of CPU on a small machine, and in a profile of the command service under load the second
one was about 7 % of the service's CPU (its answers are a few hundred bytes).

:class:`OneWriteProtocol` is uvicorn's own protocol whose requests write through
:class:`_HeadersHeld`: the headers of an answer that declares a ``content-length`` (and has a
body to come) are held until its first body write, and go out with it as one write. Anything
else goes straight through: chunked answers (streams), answers to ``HEAD``, an empty body, the
``100 Continue`` interim answer. A connection closed with headers held (the application failed
after starting its answer) writes them first, as uvicorn did, then closes.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadersHeld:
    """The transport as one request's cycle sees it (see the module); everything but
    :meth:`write` and :meth:`close` is the transport's own."""

    __slots__ = ("_cycle", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
            return
        cycle = self._cycle
        if (
            cycle.response_started
            and not cycle.response_complete
            and cycle.chunked_encoding is False
            and cycle.expected_content_length > 0
            and cycle.scope["method"] != "HEAD"
        ):
            # The headers' write (uvicorn marks the answer started before it): the body follows.
            self._held = bytes(data)
            return
        self._transport.write(data)

    def close(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol, each request's answer written once (see the module).
    Pass it as uvicorn's ``http``."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new cycle (not an upgrade to a websocket, which keeps the transport as it is): its
        # task has not run yet, nor has it written anything.
        if cycle is not None and cycle is not before:
            cycle.transport = cast(asyncio.Transport, _HeadersHeld(cycle.transport, cycle))
