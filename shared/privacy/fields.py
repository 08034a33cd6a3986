"""Which texts of each event type are personal data, and whose key seals them.

:data:`PERSONAL_FIELDS` names, per event type, the fields that identify or describe a person
(names, e-mail addresses, free text that can name someone: notes, messages, answers,
feedback) and the person whose key seals them, the one whose erasure must make them
unreadable. :data:`NOT_PERSONAL` names every other text an event type carries (titles, ids
written as text, codes, time zones, colours, keys of mappings), so that a new text field
is classified when it is added: ``tests/unit/test_privacy_fields.py`` fails for a text of an
event type that neither table names.

A field is named by its path in the event's JSON: its wire names joined by ``.``, where
``*`` is every item of a list or every value of a mapping and ``<key>`` the keys of a
mapping (``answers.*.*``: every answer of every exercise of a homework). A segment naming a
field of one struct of a union (``mark.text``: a :class:`~shared.events.paper.TextNote`,
not a stroke nor a stamp) passes over the others.

:func:`seal_event` seals an event's personal fields (the command service does, as each
event is made: see ``services/command/domain/aggregate.py``). ``None`` stays ``None``; a
text already sealed is left as it is, so sealing twice changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec

from shared.events import Event
from shared.privacy.cipher import is_sealed

E = TypeVar("E", bound=Event)

PersonOf = Callable[[Any, Any], UUID]
"""Whose key seals an event's personal fields: a function of the event and of the aggregate
it is recorded on (``None`` where there is none)."""


class Encrypts(Protocol):
    """What seals a text (:class:`~shared.privacy.cipher.FieldCipher`)."""

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID) -> str: ...


def student(event: Any, aggregate: Any) -> UUID:
    """The student the event is about (``studentId``)."""
    person: UUID = event.student_id
    return person


def the_person(event: Any, aggregate: Any) -> UUID:
    """The person the aggregate is (``aggregateId`` of a person's events)."""
    person: UUID = event.aggregate_id
    return person


def paper_student(event: Any, aggregate: Any) -> UUID:
    """The student of a paper upload once it is routed (its ``PaperRouted``); before that,
    the upload itself (its own id), whose key no student's erasure reaches."""
    routed = getattr(aggregate, "student_id", None)
    return routed if isinstance(routed, UUID) else event.aggregate_id


@dataclass(frozen=True)
class Personal:
    """The personal fields of one event type and whose key seals them."""

    paths: frozenset[str]
    person: PersonOf


def _personal(person: PersonOf, *paths: str) -> Personal:
    return Personal(frozenset(paths), person)


PERSONAL_FIELDS: dict[str, Personal] = {
    # people
    "PersonRegistered": _personal(the_person, "name", "email"),
    # notes
    "TutorNoteWritten": _personal(student, "content"),
    "TutorNoteEdited": _personal(student, "content"),
    "TutorNoteRedacted": _personal(student, "reason"),
    # seats
    "AttendanceMarked": _personal(student, "notes"),
    "HelpRequestRaised": _personal(student, "message"),
    "HelpRequestResolved": _personal(student, "response"),
    # academic profiles
    "SubjectAssessed": _personal(student, "notes"),
    "WorkingLevelChanged": _personal(student, "reason"),
    "ContentAssigned": _personal(student, "reason"),
    "ContentAssignmentWithdrawn": _personal(student, "reason"),
    # catch-ups and enrolments
    "CatchUpAssigned": _personal(student, "reason"),
    "CatchUpCancelled": _personal(student, "reason"),
    "StudentRemoved": _personal(student, "reason"),
    "StudentLessonChanged": _personal(student, "reason"),
    # homework and exercises: the student's answers, the tutor's notes and feedback
    "HomeworkAssigned": _personal(student, "notes"),
    "HomeworkSubmitted": _personal(student, "answers.*.*"),
    "HomeworkGraded": _personal(student, "feedback"),
    "ExerciseSubmitted": _personal(student, "answers.*"),
    "ExerciseGraded": _personal(student, "feedback"),
    # paper work: a text written in ink on a page, the hand-back's feedback
    "PaperAnnotated": _personal(paper_student, "mark.text"),
    "PaperHandedBack": _personal(student, "feedback"),
}
"""Per event type: its personal fields and whose key seals them."""

_IDS = "ids, codes and references written as text"

NOT_PERSONAL: dict[str, frozenset[str]] = {
    # Centres: the centre's name (an organisation, not a person), time zone, priorities.
    "CentreRegistered": frozenset({"name", "timeZone", "helpSlaMinutes.<key>"}),
    "CentreHelpSlasChanged": frozenset({"helpSlaMinutes.<key>", "previousMinutes.<key>"}),
    # Classes, sessions, series, timetables: names and titles of teaching, places, links,
    # times, and the reasons a session or class changed (about the teaching, not a student).
    # A title can name someone ("Jane's 1:1"): the API's documentation says titles are not
    # for names.
    "ClassCreated": frozenset({"name", "subject"}),
    "ClassUpdated": frozenset({"name", "subject"}),
    "ClassCancelled": frozenset({"reason"}),
    "ClassSessionsScheduled": frozenset({"rule.startTime", "rule.timeZone"}),
    "SessionScheduled": frozenset({"title", "location", "meetingLink", "timeZone"}),
    "SessionModeChanged": frozenset({"location", "meetingLink"}),
    "SessionCancelled": frozenset({"reason"}),
    "SessionRescheduled": frozenset({"reason"}),
    "SessionSeriesScheduled": frozenset({"title", "rule.startTime", "rule.timeZone"}),
    "SessionSeriesCancelled": frozenset({"reason"}),
    "TimetableSessionBooked": frozenset({"booking.title"}),
    "TimetableSessionMoved": frozenset({"booking.title"}),
    "TimetableSessionReleased": frozenset({"booking.title", "reason"}),
    # Enrolments and content: course, lesson and exercise references.
    "StudentEnrolled": frozenset({"courseId", "lessonId"}),
    "StudentLessonChanged": frozenset(
        {"courseId", "lessonId", "previousCourseId", "previousLessonId"}
    ),
    "SubjectAssessed": frozenset({"courseId"}),
    "WorkingLevelChanged": frozenset({"courseId"}),
    "ContentAssigned": frozenset({"courseId", "lessonId", "exerciseId"}),
    "ContentAssignmentWithdrawn": frozenset({"courseId"}),
    "HelpRequestRaised": frozenset({"exerciseId"}),
    # Attendance records: the titles of the sessions marked.
    "StudentAttendanceRecorded": frozenset({"mark.title"}),
    "RepeatedAbsencesNoticed": frozenset({"sessions.*.title"}),
    # Exercises and homework as published and set: their titles, questions and answer keys
    # (teaching material); the ids of the exercises and questions answers are given for.
    "ExercisePublished": frozenset(
        {
            "courseId",
            "title",
            "instructions",
            "questions.*.questionId",
            "questions.*.prompt",
            "questions.*.options.*",
            "questions.*.acceptedAnswers.*",
        }
    ),
    "ExerciseRetired": frozenset({"reason"}),
    "ExerciseAssigned": frozenset({"title"}),
    "ExerciseSubmitted": frozenset({"answers.<key>"}),
    "HomeworkAssigned": frozenset({"title"}),
    "HomeworkSubmitted": frozenset({"answers.<key>", "answers.*.<key>"}),
    # Paper work: sheet codes and titles, blob keys (content digests naming a stored file,
    # not its content), content types, ink colours, rubric criteria (teaching material), and
    # why an upload could not be routed (written by tutorpulse: no readable code).
    "WorksheetPrinted": frozenset({"code", "title"}),
    "PaperRouted": frozenset({"code", "title"}),
    "PaperUploaded": frozenset({"pages.*.blobKey", "pages.*.contentType"}),
    "PaperUnroutable": frozenset({"reason"}),
    "PaperAnnotated": frozenset({"mark.colour"}),
    "PaperVoiceCommentAttached": frozenset({"blobKey", "contentType"}),
    "PaperScored": frozenset({"rubric.*.criterion"}),
    # Notifications: channel names; the centre's webhook (an organisation's URL, and a
    # secret that is not personal data: it stays as it is, as the notifier needs it).
    "NotificationPreferencesSet": frozenset({"channels.<key>"}),
    "NotificationChannelsConfigured": frozenset({"webhookUrl", "webhookSecret"}),
    # The erasure's audit record: why (the centre's record, which must not name the person)
    # and the destroyed key's id. Readable for ever: it is what an auditor sees.
    "PersonDataErased": frozenset({"reason", "keyId"}),
    # A command's receipt: the key and fingerprint of the request, and the answer's names
    # and values. An answer is built from what the command recorded (personal texts sealed
    # already), never from the request's plain text: the command service's tests hold it.
    "CommandReceiptRecorded": frozenset({"idempotencyKey", "fingerprint", "body.<key>", "body.*"}),
}
"""Per event type: its texts that are not personal data (see the comments for why)."""


@functools.cache
def _attributes(cls: type[msgspec.Struct]) -> dict[str, str]:
    """A struct's attribute names by wire name."""
    return {f.encode_name: f.name for f in msgspec.structs.fields(cls)}


def _sealed(value: Any, segments: tuple[str, ...], seal: Callable[[str], str]) -> Any:
    if value is None:
        return None
    if not segments:
        if not isinstance(value, str):
            raise TypeError(f"a personal field holds {type(value).__name__}, not a text")
        return value if is_sealed(value) else seal(value)
    head, rest = segments[0], segments[1:]
    if head == "*":
        if isinstance(value, dict):
            return {key: _sealed(item, rest, seal) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(_sealed(item, rest, seal) for item in value)
        raise TypeError(f"'*' of a {type(value).__name__}")
    if not isinstance(value, msgspec.Struct):
        raise TypeError(f"field {head!r} of a {type(value).__name__}")
    attribute = _attributes(type(value)).get(head)
    if attribute is None:  # another struct of a union
        return value
    old = getattr(value, attribute)
    new = _sealed(old, rest, seal)
    return value if new is old else msgspec.structs.replace(value, **{attribute: new})


def personal_of(event: Event) -> Personal | None:
    """The event type's personal fields, ``None`` if it has none."""
    return PERSONAL_FIELDS.get(type(event).__name__)


def seal_event(event: E, cipher: Encrypts, aggregate: object | None = None) -> E:
    """``event`` with its personal texts sealed with the key of the person they are about
    (made on first use; :class:`~shared.privacy.keys.PersonErased` for an erased person).
    ``aggregate``: what the event is recorded on, where the person is found there (paper)."""
    personal = personal_of(event)
    if personal is None:
        return event
    person: list[UUID] = []

    def seal(text: str) -> str:
        if not person:
            person.append(personal.person(event, aggregate))
        return cipher.encrypt(text, centre_id=event.centre_id, person_id=person[0])

    sealed: E = event
    for path in sorted(personal.paths):
        sealed = _sealed(sealed, tuple(path.split(".")), seal)
    return sealed
