"""Events stored during a request carry its correlation and causation ids (and traceparent);
events stored without, like every event stored before, decode as they always did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.persistence import JSONTranscoder

from services.command.application import TutoringCentres
from services.command.commands.centres import RegisterPerson
from shared import events
from shared.events import CentreRegistered, Metadata
from shared.eventstore import EventStoreSettings
from shared.eventstore.store import EventMapper
from shared.observability.context import trace, trace_headers, traced
from shared.settings import load
from shared.tenancy import Role
from tests.builders import register_centre

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _event() -> CentreRegistered:
    return CentreRegistered(
        centre_id="alpha",
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        occurred_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        actor_id=uuid.uuid4(),
        actor_role=Role.SUPER_ADMIN,
        name="Alpha",
        time_zone="Australia/Sydney",
        help_sla_minutes={"NORMAL": 10},
    )


def test_an_event_stored_in_a_trace_carries_it_and_decodes_to_the_same_event() -> None:
    event = _event()
    mapper = EventMapper(JSONTranscoder())
    with traced(trace("click-1", "click-1", TRACEPARENT)):
        stored = mapper.to_stored_event(event)
    assert mapper.to_domain_event(stored) == event
    assert events.decode_header(stored.state).metadata == Metadata(
        correlation_id="click-1", causation_id="click-1", traceparent=TRACEPARENT
    )
    assert trace_headers(events.decode_header(stored.state).metadata) == {
        "Tp-Correlation-Id": "click-1",
        "Tp-Causation-Id": "click-1",
        "traceparent": TRACEPARENT,
    }


def test_an_event_of_the_old_shape_decodes_and_has_no_metadata() -> None:
    event = _event()
    old = events.encode(event)  # what was stored before events carried metadata
    assert b"metadata" not in old
    assert (
        EventMapper(JSONTranscoder()).to_stored_event(event).state == old
    )  # no trace: stored as before
    assert events.decode(old) == event
    assert events.decode_header(old).metadata is None
    assert trace_headers(None) == {}


def test_a_stores_events_of_both_shapes_load_together(tmp_path: Path) -> None:
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    try:
        alpha = register_centre(centres, "alpha")  # no request: events of the old shape
        with traced(trace("click-2", "click-2")):
            centres.handle(
                alpha["root"],
                RegisterPerson(name="Nia", email="nia@alpha.example", role=Role.TEACHER),
            )
        stored = centres.recorder.select_notifications(1, 1000)
        shapes = [events.decode_header(n.state).metadata for n in stored]
        assert shapes[:-1] == [None] * (len(stored) - 1)
        assert shapes[-1] == Metadata(correlation_id="click-2", causation_id="click-2")
        # The store still reads every one of them (the centre's directory is built from both).
        for notification in stored:
            assert events.decode(notification.state, notification.topic).centre_id == "alpha"
        with traced(trace("click-3", "click-3")):
            centres.handle(
                alpha["root"],
                RegisterPerson(name="Ola", email="ola@alpha.example", role=Role.TEACHER),
            )
    finally:
        centres.close()
