"""The envelope every tutorpulse event carries, and the registry of event types.

An event type is defined once, here in ``shared.events``, as a frozen msgspec Struct. The same
bytes are what the event store keeps and what the relay publishes to NATS, so any service can
decode events with this package alone. Released types are never edited in place: a change is a
new ``schema_version`` plus an upcaster (see :func:`register_upcaster`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from shared.tenancy.roles import Role

_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


class Event(msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="type", tag=True):
    """Base of every event: which centre, which aggregate at which version, when, and who."""

    centre_id: str
    aggregate_id: UUID
    aggregate_version: int
    occurred_at: datetime
    actor_id: UUID
    actor_role: Role
    schema_version: int = 1

    current_schema: ClassVar[int] = 1
    """Bump together with the ``schema_version`` default when the type changes shape."""

    aggregate_kind: ClassVar[str] = ""
    """The family of aggregates this event belongs to; a token of the NATS subject."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("is_abstract", False):
            return
        if cls.__name__ in _REGISTRY:
            raise TypeError(f"event type {cls.__name__} is defined twice")
        _REGISTRY[cls.__name__] = cls

    @property
    def type_name(self) -> str:
        return type(self).__name__

    @property
    def partition_key(self) -> str:
        """Events sharing a partition key must be applied in order by a projection."""
        return str(self.aggregate_id)

    # The names the eventsourcing library knows the envelope fields by.
    @property
    def originator_id(self) -> UUID:
        return self.aggregate_id

    @property
    def originator_version(self) -> int:
        return self.aggregate_version

    @property
    def timestamp(self) -> datetime:
        return self.occurred_at


class SessionScopedEvent(Event, frozen=True, kw_only=True):
    """An event about one session (its roster, seats, catch-ups); ordered per session."""

    session_id: UUID
    aggregate_kind: ClassVar[str] = "session"
    is_abstract: ClassVar[bool] = True

    @property
    def partition_key(self) -> str:
        return str(self.session_id)


def event_type(name: str) -> type[Event]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEventType(name) from None


def event_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


class UnknownEventType(LookupError):
    pass


def register_upcaster(
    name: str, from_version: int
) -> Callable[
    [Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]
]:
    """Register a function turning a stored ``name`` payload of ``from_version`` into the next."""

    def decorator(
        func: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        _UPCASTERS[(name, from_version)] = func
        return func

    return decorator


_json_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder()


class Metadata(msgspec.Struct, frozen=True, rename="camel"):
    """What caused an event, stored with it under ``metadata`` by the event store (not a field
    of any event type: events stored before it, and events stored outside a request, have
    none). ``correlation_id``: the request id of the click that started it all;
    ``causation_id``: what caused this event directly (the request id of the command, or the
    id of the event that caused it); ``traceparent``: the W3C trace context it was stored in.
    See ``shared.observability.context``."""

    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None


class Header(msgspec.Struct, frozen=True, rename="camel"):
    """The routing part of an event, decodable without knowing its type."""

    type: str
    centre_id: str
    aggregate_id: str
    session_id: str | None = None
    schema_version: int = 1
    metadata: Metadata | None = None

    @property
    def partition_key(self) -> str:
        """As :attr:`Event.partition_key`: the session only for events of a session (a note or
        homework may name a session without being ordered with it)."""
        if self.session_id and issubclass(event_type(self.type), SessionScopedEvent):
            return self.session_id
        return self.aggregate_id


_header_decoder = msgspec.json.Decoder(Header)

MAX_EVENT_BYTES = 512 * 1024
"""The most an encoded event may weigh: it travels as one NATS message (the server's
``max_payload`` is 1 MiB, headers included), so a larger one could never be relayed."""


def encode(event: Event) -> bytes:
    return _json_encoder.encode(event)


def decode_header(data: bytes) -> Header:
    return _header_decoder.decode(data)


def decode(data: bytes, name: str | None = None) -> Event:
    """Decode an event of any registered type, upcasting older schema versions."""
    header = decode_header(data)
    cls = event_type(name or header.type)
    current = cls.current_schema
    if header.schema_version == current:
        return msgspec.json.decode(data, type=cls)
    payload: dict[str, Any] = _envelope_decoder.decode(data)
    version = header.schema_version
    while version < current:
        payload = _UPCASTERS[(cls.__name__, version)](payload)
        version += 1
        payload["schemaVersion"] = version
    return msgspec.convert(payload, type=cls)
