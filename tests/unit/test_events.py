from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from shared import events
from shared.events import Event, register_upcaster
from shared.tenancy import Role


def test_every_event_round_trips_through_its_json_contract() -> None:
    for name, cls in events.event_types().items():
        if name.startswith("_Probe"):
            continue
        assert cls.__struct_config__.frozen, name
        assert "centre_id" in cls.__struct_fields__


def test_decoding_needs_only_the_contract() -> None:
    session = uuid4()
    event = events.SessionCancelled(
        centre_id="alpha",
        aggregate_id=session,
        aggregate_version=2,
        occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
        actor_id=uuid4(),
        actor_role=Role.TEACHER,
        session_id=session,
        reason="flood",
    )
    data = events.encode(event)
    assert msgspec.json.decode(data)["type"] == "SessionCancelled"
    assert events.decode(data) == event
    assert events.subject_for(events.decode_header(data)) == (
        f"tp.evt.alpha.session.{session}.SessionCancelled"
    )


def test_the_relay_routes_by_header_exactly_as_by_the_whole_event() -> None:
    """A note or homework names a session without being a session's event: it travels on its
    own aggregate's subject, whether the subject is built from the event or from its header."""
    when, who = datetime(2026, 11, 25, tzinfo=UTC), uuid4()
    envelope: dict[str, Any] = {
        "centre_id": "alpha",
        "aggregate_version": 1,
        "occurred_at": when,
        "actor_id": who,
        "actor_role": "TEACHER",
    }
    samples = [
        events.TutorNoteWritten(
            aggregate_id=uuid4(),
            student_id=uuid4(),
            content="ok",
            visibility=events.NoteVisibility.EXTERNAL,
            session_id=uuid4(),
            **envelope,
        ),
        events.HomeworkAssigned(
            aggregate_id=uuid4(),
            student_id=uuid4(),
            teacher_id=who,
            title="h",
            exercise_ids=(uuid4(),),
            max_score=1,
            due_at=when,
            session_id=uuid4(),
            **envelope,
        ),
        events.SessionStarted(aggregate_id=(session := uuid4()), session_id=session, **envelope),
    ]
    for event in samples:
        by_header = events.subject_for(events.decode_header(events.encode(event)))
        assert by_header == events.subject_for(event)
        assert by_header.split(".")[4] == event.partition_key


def test_an_old_schema_version_is_upcast_on_read() -> None:
    class _ProbeRenamed(Event, frozen=True, kw_only=True):
        full_name: str
        schema_version: int = 2
        current_schema = 2

    @register_upcaster("_ProbeRenamed", 1)
    def split_name(payload: dict[str, Any]) -> dict[str, Any]:
        payload["fullName"] = payload.pop("name")
        return payload

    old = msgspec.json.encode(
        {
            "type": "_ProbeRenamed",
            "centreId": "alpha",
            "aggregateId": str(uuid4()),
            "aggregateVersion": 1,
            "occurredAt": "2026-11-25T00:00:00Z",
            "actorId": str(uuid4()),
            "actorRole": "TEACHER",
            "schemaVersion": 1,
            "name": "Ann",
        }
    )
    event = events.decode(old)
    assert isinstance(event, _ProbeRenamed)
    assert (event.full_name, event.schema_version) == ("Ann", 2)


def test_unknown_event_types_are_reported() -> None:
    with pytest.raises(events.UnknownEventType):
        events.event_type("NoSuchThing")
