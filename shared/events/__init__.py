"""Event contracts shared by every tutorpulse service. See docs/events.md for the catalogue."""

from shared.events.base import (
    Event,
    Header,
    SessionScopedEvent,
    UnknownEventType,
    decode,
    decode_header,
    encode,
    event_type,
    event_types,
    register_upcaster,
)
from shared.events.catch_ups import (
    CatchUpAssigned,
    CatchUpCancelled,
    CatchUpCompleted,
    CatchUpStarted,
)
from shared.events.centres import CentreRegistered
from shared.events.people import PersonRegistered
from shared.events.receipts import CommandReceiptRecorded
from shared.events.seats import (
    AttendanceMarked,
    AttendanceStatus,
    HelpPriority,
    HelpRequestAcknowledged,
    HelpRequestCancelled,
    HelpRequestRaised,
    HelpRequestResolved,
    HelpRequestStarted,
    HelpRequestStatus,
)
from shared.events.sessions import (
    SessionCancelled,
    SessionEnded,
    SessionMode,
    SessionScheduled,
    SessionStarted,
    SessionStatus,
    StudentEnrolled,
    StudentRemoved,
)
from shared.events.subjects import STREAM_NAME, STREAM_SUBJECTS, subject_for

__all__ = [
    "STREAM_NAME",
    "STREAM_SUBJECTS",
    "AttendanceMarked",
    "AttendanceStatus",
    "CatchUpAssigned",
    "CatchUpCancelled",
    "CatchUpCompleted",
    "CatchUpStarted",
    "CentreRegistered",
    "CommandReceiptRecorded",
    "Event",
    "Header",
    "HelpPriority",
    "HelpRequestAcknowledged",
    "HelpRequestCancelled",
    "HelpRequestRaised",
    "HelpRequestResolved",
    "HelpRequestStarted",
    "HelpRequestStatus",
    "PersonRegistered",
    "SessionCancelled",
    "SessionEnded",
    "SessionMode",
    "SessionScheduled",
    "SessionScopedEvent",
    "SessionStarted",
    "SessionStatus",
    "StudentEnrolled",
    "StudentRemoved",
    "UnknownEventType",
    "decode",
    "decode_header",
    "encode",
    "event_type",
    "event_types",
    "register_upcaster",
    "subject_for",
]
