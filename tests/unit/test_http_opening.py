"""Sealed texts opened at the edge: a JSON answer with an actor leaves with its sealed texts
opened for the acting centre (Content-Length fixed), a streamed one line by line; an answer
without an actor, or that is not JSON, leaves as it was made."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import anyio
import pytest

from shared.eventstore.settings import EventStoreSettings
from shared.http.auth import ACTOR, ERASURE_CHECK
from shared.http.opening import OpenSealed
from shared.privacy import KeyStore, LocalKms, PrivacySettings, Revealer, seal
from shared.privacy.erasure import ErasureCheck
from shared.tenancy import Actor, Role

CENTRE = "main-campus"
OTHER = "north-campus"
NAME = 'Jane "JJ" O\'Neil \\ ñ'
Message = dict[str, Any]


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    store = KeyStore(
        EventStoreSettings(sqlite_path=tmp_path / "tutorpulse.sqlite"),
        PrivacySettings(),
        LocalKms({"m1": b"1" * 32}),
    )
    yield store
    store.close()


def sealed(keys: KeyStore, text: str, person: UUID, centre: str = CENTRE) -> str:
    return seal(keys.get_or_create(centre, person), text, centre_id=centre, person_id=person)


def actor(centre: str = CENTRE) -> Actor:
    return Actor(user_id=uuid4(), role=Role.CENTER_ADMIN, centre_id=centre)


def answering(
    messages: list[Message], who: Actor | None
) -> Any:  # an ASGI app that answers ``messages`` as ``who``
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if who is not None:
            scope[ACTOR] = who
        for message in messages:
            await send(dict(message))

    return app


def start(content_type: bytes = b"application/json", length: int | None = None) -> Message:
    headers = [(b"content-type", content_type), (b"x-tutorpulse-watermark", b"7")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def run(
    keys: KeyStore, messages: list[Message], who: Actor | None, scope_type: str = "http"
) -> tuple[list[Message], dict[str, Any]]:
    sent: list[Message] = []
    scope: dict[str, Any] = {"type": scope_type, "path": "/x", "headers": []}

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    async def answer() -> None:
        opener = OpenSealed(answering(messages, who), Revealer(keys), ErasureCheck(keys))
        await opener(scope, receive, send)

    anyio.run(answer)
    return sent, scope


def headers_of(message: Message) -> dict[bytes, bytes]:
    return dict(message["headers"])


def test_a_plain_answer_goes_out_as_it_was(keys: KeyStore) -> None:
    data = b'{"name":"Jane Doe"}'
    messages = [start(length=len(data)), body(data)]
    sent, _ = run(keys, messages, actor())
    assert sent == messages


def test_sealed_texts_are_opened_for_the_acting_centre_and_the_length_fixed(
    keys: KeyStore,
) -> None:
    jane, john = uuid4(), uuid4()
    data = json.dumps(
        {
            "name": sealed(keys, NAME, jane),
            "title": f"Help for {sealed(keys, 'Jane', jane)} from {sealed(keys, 'John', john)}",
            "count": 3,
        }
    ).encode()
    sent, _ = run(keys, [start(length=len(data)), body(data)], actor())
    opened = sent[1]["body"]
    assert json.loads(opened) == {"name": NAME, "title": "Help for Jane from John", "count": 3}
    assert headers_of(sent[0])[b"content-length"] == str(len(opened)).encode()
    assert headers_of(sent[0])[b"x-tutorpulse-watermark"] == b"7"
    assert b"pd1." not in opened


def test_problem_json_is_opened_too(keys: KeyStore) -> None:
    jane = uuid4()
    data = json.dumps({"detail": f"{sealed(keys, 'Jane', jane)} is not here"}).encode()
    sent, _ = run(keys, [start(b"application/problem+json"), body(data)], actor())
    assert json.loads(sent[1]["body"]) == {"detail": "Jane is not here"}


def test_another_centre_reads_unreadable_and_an_erased_person_reads_erased(
    keys: KeyStore,
) -> None:
    jane, john = uuid4(), uuid4()
    data = json.dumps([sealed(keys, "Jane", jane), sealed(keys, "John", john)]).encode()
    sent, _ = run(keys, [start(), body(data)], actor(OTHER))
    assert json.loads(sent[1]["body"]) == ["[unreadable]", "[unreadable]"]
    keys.destroy(CENTRE, jane, erased_by=uuid4(), reason="parent's request")
    sent, _ = run(keys, [start(), body(data)], actor())
    assert json.loads(sent[1]["body"]) == ["[erased]", "John"]


def test_a_streamed_answer_is_opened_line_by_line(keys: KeyStore) -> None:
    jane = uuid4()
    lines = [
        json.dumps({"position": n, "note": sealed(keys, f"note {n} about {NAME}", jane)}).encode()
        + b"\n"
        for n in range(4)
    ]
    whole = b"".join(lines)
    cut = whole.index(b"pd1.", len(lines[0]) + len(lines[1])) + 20  # inside a sealed text
    chunks = [lines[0], lines[1], whole[len(lines[0]) + len(lines[1]) : cut], whole[cut:]]
    messages = [start(b"application/x-ndjson"), *(body(c, more=True) for c in chunks), body(b"")]
    sent, _ = run(keys, messages, actor())
    assert b"content-length" not in headers_of(sent[0])
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert [m["more_body"] for m in sent[1:]][-1] is False
    out = b"".join(m["body"] for m in sent[1:])
    assert [json.loads(line) for line in out.splitlines()] == [
        {"position": n, "note": f"note {n} about {NAME}"} for n in range(4)
    ]
    first = json.dumps({"position": 0, "note": f"note 0 about {NAME}"}, ensure_ascii=False)
    assert sent[1]["body"] == first.encode() + b"\n"  # a whole line goes out at once


def test_an_answer_without_an_actor_or_not_json_is_left_alone(keys: KeyStore) -> None:
    token = sealed(keys, "Jane", uuid4()).encode()
    data = b'{"detail":"' + token + b'"}'
    messages = [start(b"application/problem+json", len(data)), body(data)]
    assert run(keys, messages, None)[0] == messages
    png = [start(b"image/png", len(data)), body(data)]
    assert run(keys, png, actor())[0] == png


def test_the_erasure_check_rides_in_every_connection_scope(keys: KeyStore) -> None:
    _, scope = run(keys, [], None)
    assert isinstance(scope[ERASURE_CHECK], ErasureCheck)
    _, scope = run(keys, [], None, scope_type="websocket")
    assert isinstance(scope[ERASURE_CHECK], ErasureCheck)


def test_an_answer_that_cannot_be_opened_is_a_503(tmp_path: Path) -> None:
    uncached = KeyStore(
        EventStoreSettings(sqlite_path=tmp_path / "keys.sqlite"),
        PrivacySettings(key_cache_size=0),
        LocalKms({"m1": b"1" * 32}),
    )
    data = json.dumps({"name": sealed(uncached, "Jane", uuid4())}).encode()
    uncached.close()  # the key store cannot be read any more
    sent, _ = run(uncached, [start(length=len(data)), body(data)], actor())
    assert sent[0]["status"] == 503
    assert headers_of(sent[0])[b"content-type"] == b"application/problem+json"
    assert headers_of(sent[0])[b"retry-after"] == b"5"
    assert json.loads(sent[1]["body"])["status"] == 503
    assert b"pd1." not in sent[1]["body"]
