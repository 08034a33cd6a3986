"""Which request (or event) the work in hand is for: one click followed from HTTP to the
websocket.

Every HTTP request gets a **request id**: the caller's ``X-Request-Id`` when it is short and
plain (:func:`valid_request_id`), otherwise a new one. A W3C ``traceparent`` sent with it is
kept when it is well formed (:func:`valid_traceparent`) and ignored otherwise. While the
request runs, :data:`CURRENT` holds its :class:`Trace`: the **correlation id** (the request id:
everything one click causes shares it), the **causation id** (what caused the work: the request
id for a command from HTTP, the causing event's id for work an event caused) and the
traceparent. The event store writes them into each event it stores
(``shared.events.Metadata``), the relay carries them as NATS headers (:data:`CORRELATION_HEADER`,
:data:`CAUSATION_HEADER`, :data:`TRACEPARENT_HEADER`), and the projection service and gateway
bind them to their log lines.

A context variable costs one lookup per event; the JSON the store appends to an event is made
once per :class:`Trace`, not once per event.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from shared.events import Metadata

REQUEST_ID_HEADER = "X-Request-Id"
CORRELATION_HEADER = "Tp-Correlation-Id"
CAUSATION_HEADER = "Tp-Causation-Id"
TRACEPARENT_HEADER = "traceparent"

MAX_ID_LENGTH = 128
"""The longest request id taken from a caller; a longer one is replaced by a new one."""
_SAFE_ID = re.compile(rf"[A-Za-z0-9._~:+/=@-]{{1,{MAX_ID_LENGTH}}}")
"""Letters, digits and ``._~:+/=@-``: nothing a log line, a JSON string or a NATS header
would have to escape, and no comma (notices list several ids separated by commas)."""
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def valid_request_id(value: str | None) -> str | None:
    """``value`` if it can serve as a request id as it is, else ``None``."""
    if value is not None and _SAFE_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    """A fresh request id: 32 hexadecimal digits."""
    return uuid.uuid4().hex


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a W3C trace context ``traceparent`` (version 00, or a later version
    whose first four fields read as version 00's), else ``None``: the trace and parent ids may
    not be all zeros, and version ``ff`` is invalid."""
    if value is None or len(value) < 55:
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, _ = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    if version == "00" and len(value) != 55:
        return None
    if len(value) > 55 and value[55] != "-":
        return None
    return value[:55] if version != "00" else value


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id a valid ``traceparent`` names."""
    return traceparent[3:35] if traceparent else None


class _Stored(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    correlation_id: str
    causation_id: str
    traceparent: str | None = None


_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Trace:
    """What the work in hand is for. Build with :func:`trace`."""

    correlation_id: str
    causation_id: str
    traceparent: str | None = None
    stored: bytes = field(default=b"", repr=False, compare=False)
    """``,"metadata":{…}}``: what the event store puts in place of an event's closing brace."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The NATS headers that carry it."""


def trace(correlation_id: str, causation_id: str, traceparent: str | None = None) -> Trace:
    metadata = _encode(_Stored(correlation_id, causation_id, traceparent))
    headers = {CORRELATION_HEADER: correlation_id, CAUSATION_HEADER: causation_id}
    if traceparent is not None:
        headers[TRACEPARENT_HEADER] = traceparent
    return Trace(
        correlation_id, causation_id, traceparent, b',"metadata":' + metadata + b"}", headers
    )


CURRENT: ContextVar[Trace | None] = ContextVar("tutorpulse_trace", default=None)
"""The trace of the work in hand in this task or thread (copied into the command threads)."""


def current() -> Trace | None:
    return CURRENT.get()


@contextmanager
def traced(value: Trace | None) -> Iterator[Trace | None]:
    """Run the block with ``value`` as the current trace (``None``: none)."""
    token = CURRENT.set(value)
    try:
        yield value
    finally:
        CURRENT.reset(token)


_NO_HEADERS: Mapping[str, str] = {}


def trace_headers(metadata: Metadata | None) -> Mapping[str, str]:
    """The NATS headers that carry a stored event's metadata to the projections (the relay's
    messages): none for an event stored without."""
    if metadata is None:
        return _NO_HEADERS
    headers: dict[str, str] = {}
    if metadata.correlation_id:
        headers[CORRELATION_HEADER] = metadata.correlation_id
    if metadata.causation_id:
        headers[CAUSATION_HEADER] = metadata.causation_id
    if metadata.traceparent:
        headers[TRACEPARENT_HEADER] = metadata.traceparent
    return headers


MAX_NOTICE_IDS = 16
"""The most correlation ids a change notice names (a batch of a busy moment holds many clicks)."""


def correlations(headers: Iterable[Mapping[str, str] | None]) -> list[str]:
    """The distinct correlation ids of messages' trace headers, in order, at most
    :data:`MAX_NOTICE_IDS`: what a batch of events applied together was for."""
    found: dict[str, None] = {}
    for each in headers:
        if each:
            correlation = each.get(CORRELATION_HEADER)
            if correlation:
                for one in correlation.split(","):
                    found[one] = None
    return list(found)[:MAX_NOTICE_IDS]


def from_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The log fields of a message's trace headers (the relay's or a change notice's)."""
    if not headers:
        return {}
    fields: dict[str, str] = {}
    correlation = headers.get(CORRELATION_HEADER)
    if correlation:
        fields["correlation_id"] = correlation
    causation = headers.get(CAUSATION_HEADER)
    if causation:
        fields["causation_id"] = causation
    trace_id = trace_id_of(valid_traceparent(headers.get(TRACEPARENT_HEADER)))
    if trace_id:
        fields["trace_id"] = trace_id
    return fields
