"""The websocket protocol of ``/live``: every message a client sends and the gateway answers.

JSON text frames, one message each, told apart by ``type``. ``docs/live.md`` explains them; the
AsyncAPI document (``/asyncapi.json``) is generated from these types.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

PROTOCOL = "tutorpulse.v1"
"""The websocket subprotocol a client offers beside :data:`BEARER_PROTOCOL`; the gateway
selects it when offered."""
BEARER_PROTOCOL = "tutorpulse.bearer."
"""The prefix of the subprotocol that carries a browser's token (``tutorpulse.bearer.<JWT>``):
browsers cannot set ``Authorization`` on a websocket but can offer subprotocols, and a header,
unlike a URL, stays out of proxies' access logs and the browser's history. Never selected."""

# --- what clients send -----------------------------------------------------------------


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type"):
    """Follow a topic: ``session:<id>``, ``my-day``, ``student:<id>``, ``class:<id>``,
    ``catch-ups`` or ``notifications`` (one's own inbox). ``lastVersion``: the version of the
    copy a reconnecting client holds."""

    topic: str
    last_version: Annotated[int, msgspec.Meta(ge=0)] | None = msgspec.field(
        name="lastVersion", default=None
    )


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type"):
    """Stop following a topic."""

    topic: str


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    """A heartbeat; answered with a ``pong`` (both ways)."""


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    """The answer to a ``ping`` (both ways)."""


ClientMessage = Subscribe | Unsubscribe | Ping | Pong

# --- what the gateway sends ----------------------------------------------------------------


class Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """The whole view of a topic, as the query API returns it, at ``version``."""

    topic: str
    version: int
    data: dict[str, Any]


class Delta(msgspec.Struct, tag="delta", tag_field="type"):
    """An RFC 7386 JSON merge patch to apply to the client's copy of the topic."""

    topic: str
    version: int
    patch: dict[str, Any]


class Subscribed(msgspec.Struct, tag="subscribed", tag_field="type"):
    """The client's copy (``lastVersion``) is current: no snapshot follows."""

    topic: str
    version: int


class Unsubscribed(msgspec.Struct, tag="unsubscribed", tag_field="type"):
    topic: str


class Refused(msgspec.Struct, tag="error", tag_field="type", kw_only=True, omit_defaults=True):
    """A subscription refused or ended (HTTP-like ``status``: 400, 403, 404, 429, 503), or an
    unreadable message (no ``topic``); the socket stays open."""

    topic: str | None = None
    status: int
    detail: str


ServerMessage = Snapshot | Delta | Subscribed | Unsubscribed | Refused | Ping | Pong

decode_client_message = msgspec.json.Decoder(ClientMessage).decode
encode = msgspec.json.Encoder().encode


def type_of(message: msgspec.Struct) -> str:
    """The ``type`` a message carries on the wire."""
    return str(message.__struct_config__.tag)
