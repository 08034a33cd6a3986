"""The AsyncAPI document describes what really travels: every event type, with a payload schema
that the stored events satisfy, and the websocket protocol."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from litestar.testing import TestClient

from services.command.application import TutoringCentres
from services.command.seed import seed
from services.live_gateway import protocol
from services.live_gateway.asyncapi import document
from shared import events
from shared.eventstore import EventStoreSettings
from shared.readmodels.store import ReadStoreSettings
from shared.settings import load


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def validator(doc: dict[str, Any], schema_name: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    )


def test_every_reference_resolves_and_every_event_type_has_its_message() -> None:
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    for ref in set(refs(doc)):
        assert resolve(doc, ref) is not None, ref
    on_the_stream = set(doc["channels"]["events"]["messages"])
    assert on_the_stream == set(events.event_types())
    live = set(doc["channels"]["live"]["messages"])
    assert {"Subscribe", "Unsubscribe", "Snapshot", "Delta", "Subscribed", "Refused"} <= live


def test_stored_events_satisfy_their_payload_schemas(tmp_path: Path) -> None:
    doc = document()
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    try:
        seed(centres)
        stored = centres.recorder.select_notifications(1, 1_000_000)
    finally:
        centres.close()
    checked: set[str] = set()
    validators: dict[str, Any] = {}
    for notification in stored:
        check = validators.setdefault(notification.topic, validator(doc, notification.topic))
        payload = msgspec.json.decode(notification.state)
        errors = [str(e) for e in check.iter_errors(payload)]
        assert errors == [], (notification.topic, errors[:3])
        checked.add(notification.topic)
    assert len(checked) >= 20, checked
    broken = msgspec.json.decode(stored[0].state) | {"aggregateVersion": "one"}
    assert not validators[stored[0].topic].is_valid(broken)


@pytest.mark.parametrize(
    "message",
    [
        protocol.Snapshot(topic="my-day", version=3, data={"sessions": []}),
        protocol.Delta(topic="session:x", version=4, patch={"status": "LIVE"}),
        protocol.Subscribed(topic="my-day", version=3),
        protocol.Refused(status=404, detail="no such session", topic="session:x"),
        protocol.Refused(status=400, detail="unreadable message"),
        protocol.Subscribe(topic="my-day", last_version=2),
    ],
)
def test_websocket_messages_satisfy_their_schemas(message: msgspec.Struct) -> None:
    payload = msgspec.json.decode(msgspec.json.encode(message))
    assert validator(document(), type(message).__name__).is_valid(payload)


def test_the_gateway_serves_it(tmp_path: Path) -> None:
    from services.live_gateway.app import create_app
    from shared.readmodels.store import open_read_store

    store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "read.sqlite")})
    )
    unreachable_nats = "nats://127.0.0.1:9"  # the document is served whatever NATS does
    with TestClient(create_app(store, unreachable_nats, own_store=True)) as client:
        served = client.get("/asyncapi.json")
    assert served.status_code == 200
    assert served.json() == msgspec.json.decode(msgspec.json.encode(document()))
