"""uvicorn's protocol writing an answer once (``shared.http.one_write``): the same bytes as
uvicorn's own protocol, in one write when the answer's length is known."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shared.http.one_write import OneWriteProtocol

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class _Transport(asyncio.Transport):
    """What a socket would have been sent: each write, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass


async def _exchange(
    protocol_class: type[HttpToolsProtocol], app: App, request: bytes
) -> _Transport:
    config = Config(
        app,
        http=protocol_class,
        lifespan="off",
        log_config=None,
        access_log=False,
        date_header=False,
        server_header=False,
    )
    config.load()
    protocol = protocol_class(config, ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.wait_for(asyncio.gather(*protocol.tasks), 5)
    return transport


def _answer(status: int, headers: list[tuple[bytes, bytes]], *bodies: bytes) -> App:
    async def app(
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for number, body in enumerate(bodies, 1):
            more = number < len(bodies)
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


POST = (
    b"POST /centres/c/sessions HTTP/1.1\r\nhost: example.org\r\n"
    b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)
JSON = [(b"content-type", b"application/json"), (b"content-length", b"13")]


async def test_an_answer_of_known_length_is_written_once_with_the_same_bytes() -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]
    app = _answer(201, [*headers, (b"x-tutorpulse-position", b"7")], b'{"position":7}')
    stock = await _exchange(HttpToolsProtocol, app, POST)
    once = await _exchange(OneWriteProtocol, app, POST)
    assert len(stock.writes) == 2
    assert once.writes == [b"".join(stock.writes)]
    assert once.writes[0].startswith(b"HTTP/1.1 201 Created\r\n")
    assert not once.closed


async def test_a_body_sent_in_parts_goes_out_with_its_headers_then_part_by_part() -> None:
    app = _answer(200, JSON, b'{"a":', b'"12345"}')
    stock = await _exchange(HttpToolsProtocol, app, POST)
    once = await _exchange(OneWriteProtocol, app, POST)
    assert b"".join(once.writes) == b"".join(stock.writes)
    assert once.writes[1] == b'"12345"}'
    assert len(once.writes) == 2


@pytest.mark.parametrize(
    ("request_bytes", "headers", "bodies"),
    [
        (POST, [(b"content-type", b"text/plain")], (b"a stream", b"")),  # chunked
        (b"HEAD / HTTP/1.1\r\nhost: example.org\r\n\r\n", JSON, (b"",)),
        (POST, [(b"content-length", b"0")], (b"",)),
    ],
    ids=["chunked", "head", "empty"],
)
async def test_other_answers_are_written_as_uvicorn_writes_them(
    request_bytes: bytes, headers: list[tuple[bytes, bytes]], bodies: tuple[bytes, ...]
) -> None:
    app = _answer(200, headers, *bodies)
    stock = await _exchange(HttpToolsProtocol, app, request_bytes)
    once = await _exchange(OneWriteProtocol, app, request_bytes)
    assert once.writes == stock.writes
    assert once.writes  # the headers were not held back


async def test_an_application_failing_after_its_headers_still_sends_them_then_closes() -> None:
    async def app(
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        raise RuntimeError("the body never came")

    stock = await _exchange(HttpToolsProtocol, app, POST)
    once = await _exchange(OneWriteProtocol, app, POST)
    assert once.writes == stock.writes
    assert once.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert once.closed and stock.closed


async def test_two_requests_on_one_connection_are_each_answered_once() -> None:
    app = _answer(200, JSON, b'{"ok":"yes!"}')
    once = await _exchange(OneWriteProtocol, app, POST + POST)
    # the second request is started once the first is answered
    for _ in range(100):
        if len(once.writes) == 2:
            break
        await asyncio.sleep(0)
    assert len(once.writes) == 2
    assert once.writes[0] == once.writes[1]
    assert once.writes[0].endswith(b'\r\n\r\n{"ok":"yes!"}')
