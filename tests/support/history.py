"""An aggregate's history as the domain recorded it, typed as the events it is."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from shared.events import Event
from shared.eventstore import EventStore

E = TypeVar("E", bound=Event)


def history(store: EventStore, aggregate_id: UUID) -> list[Event]:
    """The events of one aggregate, oldest first, their personal texts opened where the
    command service sealed them. The eventsourcing library hands them back typed only as its
    ``DomainEventProtocol``; everything tutorpulse stores is an ``Event``."""
    from services.command.application import TutoringCentres
    from tests.support.privacy import opened_event

    recorded: list[Event] = []
    for event in store.events.get(aggregate_id):
        assert isinstance(event, Event), f"not a tutorpulse event: {event!r}"
        if isinstance(store, TutoringCentres):
            event = opened_event(store, event)
        recorded.append(event)
    return recorded


def only(events: list[Event], kind: type[E]) -> E:
    """The one event of type ``kind`` among ``events``."""
    (found,) = [event for event in events if isinstance(event, kind)]
    return found


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    """The events of type ``kind`` among ``events``, in order."""
    return [event for event in events if isinstance(event, kind)]


def first_of(events: list[Event], kind: type[E]) -> E:
    """``events[0]``, which must be a ``kind``."""
    assert events and isinstance(events[0], kind), events[:1]
    return events[0]
