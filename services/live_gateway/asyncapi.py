"""The AsyncAPI 3.0 document of tutorpulse's asynchronous interfaces, generated from the types.

- ``events``: every committed event on
  ``tp.evt.<centreId>.<aggregateKind>.<partitionKey>.<EventType>`` in the JetStream stream
  ``TP_EVENTS``, with one message (and payload schema) per event type of ``shared.events``;
- ``deadLetters``: events a projection could not apply, on ``tp.dlq.<consumer>.<original subject>``;
- ``changeNotices``: ``tp.delta.<centreId>.<kind>.<key>``, the projection's doorbell to the gateway;
- ``live``: the websocket ``/live`` (``services.live_gateway.protocol``).

Served by the gateway at ``/asyncapi.json``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar import get

from services.live_gateway import protocol
from shared.events import STREAM_NAME, event_types
from shared.readmodels.deltas import DeltaNotice

REF = "#/components/schemas/{name}"
_EVENT_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "`tutorpulse:<notification id>`: "
            "JetStream drops a repeat within the duplicate window.",
        },
        "Tp-Notification-Id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The event's position in the event store's log.",
        },
        "Tp-Event-Type": {
            "type": "string",
            "description": "The event type (the payload's `type`).",
        },
        "Tp-Correlation-Id": {
            "type": "string",
            "description": "The request id of the click that caused the event (its stored "
            "`metadata.correlationId`; absent for an event stored without one).",
        },
        "Tp-Causation-Id": {
            "type": "string",
            "description": "What caused the event directly (`metadata.causationId`).",
        },
        "traceparent": {
            "type": "string",
            "description": "W3C trace context of the event's trace (with tracing on, the "
            "relay's publish span).",
        },
    },
    "required": ["Nats-Msg-Id", "Tp-Notification-Id", "Tp-Event-Type"],
}
_NOTICE_HEADERS = {
    "type": "object",
    "properties": {
        "Tp-Correlation-Id": {
            "type": "string",
            "description": "The correlation ids (comma-separated, at most 16) of the events "
            "whose batch changed the document.",
        },
        "traceparent": {
            "type": "string",
            "description": "With tracing on, the projection's apply span.",
        },
    },
}
_DEAD_LETTER_HEADERS = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in (
            "Tp-Dlq-Subject",
            "Tp-Dlq-Msg-Id",
            "Tp-Notification-Id",
            "Tp-Event-Type",
            "Tp-Correlation-Id",
            "Tp-Causation-Id",
            "Tp-Dlq-Stream-Seq",
            "Tp-Dlq-Deliveries",
            "Tp-Dlq-Reason",
            "Tp-Dlq-Consumer",
            "Tp-Dlq-At",
        )
    },
}


def _parameter(description: str) -> dict[str, str]:
    return {"description": description}


@functools.cache
def document() -> dict[str, Any]:
    kinds = event_types()
    event_classes = [kinds[name] for name in sorted(kinds)]
    client = list(protocol.ClientMessage.__args__)
    server = [m for m in protocol.ServerMessage.__args__ if m not in client]
    _, schemas = msgspec.json.schema_components(
        [*event_classes, DeltaNotice, *client, *server], ref_template=REF
    )

    messages: dict[str, Any] = {}
    for cls in event_classes:
        messages[cls.__name__] = {
            "name": cls.__name__,
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip().split("\n\n")[0] or cls.__name__,
            "contentType": "application/json",
            "headers": _EVENT_HEADERS,
            "payload": {"$ref": REF.format(name=cls.__name__)},
        }
        messages[f"DeadLetter{cls.__name__}"] = {
            "name": f"DeadLetter{cls.__name__}",
            "contentType": "application/json",
            "summary": f"A {cls.__name__} that a projection could not apply",
            "headers": _DEAD_LETTER_HEADERS,
            "payload": {"$ref": REF.format(name=cls.__name__)},
        }
    messages["DeltaNotice"] = {
        "name": "DeltaNotice",
        "contentType": "application/json",
        "summary": "A read-model document changed and is now at `version`",
        "headers": _NOTICE_HEADERS,
        "payload": {"$ref": REF.format(name="DeltaNotice")},
    }
    for cls in (*client, *server):
        name = cls.__name__
        messages[name] = {
            "name": name,
            "contentType": "application/json",
            "summary": (cls.__doc__ or name).strip().split("\n\n")[0],
            "payload": {"$ref": REF.format(name=name)},
        }

    def refs(names: list[str], channel: str) -> dict[str, Any]:
        return {name: {"$ref": f"#/channels/{channel}/messages/{name}"} for name in names}

    def channel_messages(names: list[str]) -> dict[str, Any]:
        return {name: {"$ref": f"#/components/messages/{name}"} for name in names}

    event_names = [cls.__name__ for cls in event_classes]
    dead_names = [f"DeadLetter{name}" for name in event_names]
    client_names = [cls.__name__ for cls in client]
    server_names = [cls.__name__ for cls in server] + ["Ping", "Pong"]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "tutorpulse events and live updates",
            "version": "1.0.0",
            "description": "Committed events in NATS JetStream (stream `" + STREAM_NAME + "`), "
            "dead letters, change notices, and the live gateway's websocket. "
            "Every NATS user sees only what its permissions allow "
            "(docs/architecture.md, Security).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "nats:4222",
                "protocol": "nats",
                "description": "NATS with JetStream; user and password per service.",
            },
            "gateway": {
                "host": "localhost:8013",
                "protocol": "ws",
                "pathname": "/live",
                "description": "A bearer JWT, offered once (docs/live.md, Connecting): "
                "a browser as the subprotocol `"
                + protocol.BEARER_PROTOCOL
                + "<JWT>` beside `"
                + protocol.PROTOCOL
                + "` (the gateway selects only the latter), another client in `Authorization`. "
                "A token in the URL (`?token=`) is refused outside development: URLs end up "
                "in access logs and browser history.",
                "security": [
                    {"$ref": "#/components/securitySchemes/subprotocol"},
                    {"$ref": "#/components/securitySchemes/bearer"},
                ],
            },
        },
        "channels": {
            "events": {
                "address": "tp.evt.{centreId}.{aggregateKind}.{partitionKey}.{eventType}",
                "title": "Committed events",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {
                    "centreId": _parameter(
                        "The tenant; first, so a subscription to "
                        "`tp.evt.<centreId>.>` sees one centre only."
                    ),
                    "aggregateKind": _parameter(
                        "session, person, centre, class, note, exercise, "
                        "homework, academic, timetable, series, receipt…"
                    ),
                    "partitionKey": _parameter(
                        "The session id for everything in a session, "
                        "else the aggregate id: order is kept per key."
                    ),
                    "eventType": _parameter("The event type, as the payload's `type`."),
                },
                "messages": channel_messages(event_names),
            },
            "deadLetters": {
                "address": "tp.dlq.{consumer}.{originalSubject}",
                "title": "Events a projection could not apply (stream TP_DLQ)",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {
                    "consumer": _parameter("The durable consumer (`projections`)."),
                    "originalSubject": _parameter("The event's `tp.evt.…` subject."),
                },
                "messages": channel_messages(dead_names),
            },
            "changeNotices": {
                "address": "tp.delta.{centreId}.{kind}.{key}",
                "title": "A read-model document changed (core NATS)",
                "servers": [{"$ref": "#/servers/nats"}],
                "parameters": {
                    "centreId": _parameter("The tenant."),
                    "kind": _parameter("The document kind (session, tutor, student…)."),
                    "key": _parameter("The document key."),
                },
                "messages": channel_messages(["DeltaNotice"]),
            },
            "live": {
                "address": "/live",
                "title": "Live read models for tutors, staff, students and parents",
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": channel_messages(sorted({*client_names, *server_names})),
            },
        },
        "operations": {
            "publishEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "summary": "The relay publishes every committed event once, in the store's order.",
                "messages": list(refs(event_names, "events").values()),
            },
            "consumeEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "summary": "The projection service's durable pull consumer `projections`.",
                "messages": list(refs(event_names, "events").values()),
            },
            "deadLetter": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetters"},
                "summary": "The projection service parks an event it cannot apply.",
                "messages": list(refs(dead_names, "deadLetters").values()),
            },
            "announceChanges": {
                "action": "send",
                "channel": {"$ref": "#/channels/changeNotices"},
                "messages": list(refs(["DeltaNotice"], "changeNotices").values()),
            },
            "followChanges": {
                "action": "receive",
                "channel": {"$ref": "#/channels/changeNotices"},
                "summary": "The gateway rings its followers' views.",
                "messages": list(refs(["DeltaNotice"], "changeNotices").values()),
            },
            "clientSends": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "summary": "What the gateway accepts from a client.",
                "messages": list(refs(client_names, "live").values()),
            },
            "gatewaySends": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "What the gateway sends a client.",
                "messages": list(refs(sorted(set(server_names)), "live").values()),
            },
        },
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "subprotocol": {
                    "type": "httpApiKey",
                    "in": "header",
                    "name": "Sec-WebSocket-Protocol",
                    "description": "For browsers: offer the subprotocols `"
                    + protocol.PROTOCOL
                    + "` and `"
                    + protocol.BEARER_PROTOCOL
                    + "<JWT>`; the handshake's answer selects `"
                    + protocol.PROTOCOL
                    + "`, never the token.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`Authorization: Bearer <JWT>`, for clients that set headers.",
                },
            },
        },
    }


@get("/asyncapi.json", media_type="application/json", include_in_schema=False, sync_to_thread=False)
def asyncapi_json() -> dict[str, Any]:
    """The AsyncAPI document, for integrators and code generators."""
    return document()
