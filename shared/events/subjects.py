"""NATS subjects of the event stream.

``tp.evt.<centreId>.<aggregateKind>.<partitionKey>.<EventType>``

* ``centreId`` first, so a consumer (or a NATS account permission) scoped to one centre
  subscribes to ``tp.evt.<centreId>.>`` and can never receive another centre's events;
* ``aggregateKind`` (``session``, ``person``, ``centre``, ``class``, ``note``, ``exercise``,
  ``homework``, ``academic``, ``timetable``, ``attendance``, ``series``, ``receipt``) lets
  consumers take only what they read;
* ``partitionKey`` is the session id for everything that happens in a session, so per-session
  order can be kept by partitioned consumers;
* ``EventType`` is the contract name from ``shared.events``.
"""

from __future__ import annotations

from shared.events.base import Event, Header, event_type

STREAM_NAME = "TP_EVENTS"
STREAM_SUBJECTS = "tp.evt.>"


def subject_for(event: Event | Header) -> str:
    if isinstance(event, Header):
        kind = event_type(event.type).aggregate_kind
        return f"tp.evt.{event.centre_id}.{kind}.{event.partition_key}.{event.type}"
    return (
        f"tp.evt.{event.centre_id}.{event.aggregate_kind}.{event.partition_key}.{event.type_name}"
    )


def centre_filter(centre_id: str) -> str:
    return f"tp.evt.{centre_id}.>"
