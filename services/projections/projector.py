"""Applying events to read models, exactly once and in order per aggregate."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from services.projections.models.documents import CENTRE, PERSON, SESSION, TUTOR, TUTOR_HISTORY_DAYS
from services.projections.store import Doc, LogRow, ReadStore, StoredDoc, Transaction
from shared import events as ev


class OutOfOrder(Exception):
    """The event overtook an earlier event of its aggregate; try again once that is applied."""


@dataclass(frozen=True)
class Change:
    kind: str
    key: str
    centre_id: str
    version: int
    before: Doc | None
    after: Doc


@dataclass
class _Session:
    """Documents loaded and changed while applying one event."""

    tx: Transaction
    loaded: dict[tuple[str, str], StoredDoc | None] = field(default_factory=dict)
    changed: dict[tuple[str, str], tuple[str, Doc]] = field(default_factory=dict)

    def get(self, kind: str, key: str) -> Doc | None:
        if (kind, key) in self.changed:
            return self.changed[(kind, key)][1]
        if (kind, key) not in self.loaded:
            self.loaded[(kind, key)] = self.tx.get(kind, key)
        stored = self.loaded[(kind, key)]
        return None if stored is None else copy.deepcopy(stored.doc)

    def put(self, kind: str, key: str, centre_id: str, doc: Doc) -> None:
        self.get(kind, key)
        self.changed[(kind, key)] = (centre_id, doc)

    def flush(self) -> list[Change]:
        changes = []
        for (kind, key), (centre_id, doc) in self.changed.items():
            before = self.loaded.get((kind, key))
            if before is not None and before.doc == doc:
                continue
            version = (before.version if before else 0) + 1
            self.tx.put(kind, key, centre_id, version, doc)
            changes.append(Change(kind, key, centre_id, version, before.doc if before else None, doc))
        return changes


_to_builtins = msgspec.to_builtins


def apply(tx: Transaction, event: ev.Event, notification_id: int) -> list[Change]:
    """Apply one event in ``tx``; ``[]`` if it was applied before.

    Raises :class:`OutOfOrder` if an earlier event of the same aggregate is missing.
    """
    aggregate_id = str(event.aggregate_id)
    applied = tx.aggregate_version(aggregate_id)
    if event.aggregate_version <= applied:
        return []
    if event.aggregate_version != applied + 1:
        raise OutOfOrder(f"{event.type_name} v{event.aggregate_version} of {aggregate_id} "
                         f"arrived before v{applied + 1}")
    docs = _Session(tx)
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(docs, event)
    if isinstance(event, ev.SessionScopedEvent):
        payload = _to_builtins(event)
        tx.append_log(LogRow(
            notification_id=notification_id, session_id=str(event.session_id),
            centre_id=event.centre_id, aggregate_id=aggregate_id,
            aggregate_version=event.aggregate_version, occurred_at=payload["occurredAt"],
            event_type=event.type_name, actor_id=str(event.actor_id),
            actor_role=str(event.actor_role), event=payload))
    tx.set_aggregate_version(aggregate_id, event.aggregate_version)
    return docs.flush()


def apply_all(store: ReadStore, batch: Iterable[tuple[ev.Event, int]],
              generation: int | None = None) -> list[Change]:
    """Apply events in order in one transaction (for rebuilds and tests)."""
    changes: list[Change] = []
    with store.transaction(generation) as tx:
        for event, notification_id in batch:
            changes += apply(tx, event, notification_id)
    return changes


# --- how each event changes the documents ------------------------------------------------


def _iso(value: datetime) -> str:
    """UTC, to the microsecond: documents compare times as strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _centre_registered(docs: _Session, e: ev.CentreRegistered) -> None:
    docs.put(CENTRE, e.centre_id, e.centre_id, {
        "centreId": e.centre_id, "name": e.name, "timeZone": e.time_zone,
        "helpSlaMinutes": dict(e.help_sla_minutes)})


def _person_registered(docs: _Session, e: ev.PersonRegistered) -> None:
    docs.put(PERSON, str(e.aggregate_id), e.centre_id, {
        "personId": str(e.aggregate_id), "name": e.name, "role": str(e.role),
        "guardianId": str(e.guardian_id) if e.guardian_id else None})


def _session_scheduled(docs: _Session, e: ev.SessionScheduled) -> None:
    session = {
        "sessionId": str(e.session_id), "centreId": e.centre_id, "title": e.title,
        "tutorId": str(e.tutor_id), "status": "SCHEDULED", "startsAt": _iso(e.starts_at),
        "endsAt": _iso(e.ends_at), "timeZone": e.time_zone, "mode": str(e.mode),
        "meetingLink": e.meeting_link, "location": e.location, "capacity": e.capacity,
        "classId": str(e.class_id) if e.class_id else None, "startedAt": None, "endedAt": None,
        "cancelledAt": None, "cancelReason": None, "students": {},
    }
    docs.put(SESSION, str(e.session_id), e.centre_id, session)
    tutor = docs.get(TUTOR, str(e.tutor_id)) or _new_tutor(e.centre_id, str(e.tutor_id))
    tutor["sessions"][str(e.session_id)] = _tutor_session(session)
    _prune(tutor, e)
    docs.put(TUTOR, str(e.tutor_id), e.centre_id, tutor)


def _new_tutor(centre_id: str, tutor_id: str) -> Doc:
    return {"tutorId": tutor_id, "centreId": centre_id, "sessions": {}, "openHelp": {},
            "catchUps": {}}


def _tutor_session(session: Doc) -> Doc:
    return {key: session[key] for key in ("sessionId", "title", "status", "startsAt", "endsAt",
                                         "timeZone", "mode", "location")} | {
        "students": sorted(sid for sid, s in session["students"].items() if s["enrolled"])}


def _prune(tutor: Doc, e: ev.Event) -> None:
    horizon = _iso(e.occurred_at - timedelta(days=TUTOR_HISTORY_DAYS))
    tutor["sessions"] = {sid: s for sid, s in tutor["sessions"].items()
                         if s["endsAt"] >= horizon or s["status"] in ("SCHEDULED", "LIVE")}


def _session_update(docs: _Session, e: ev.SessionScopedEvent, change: Any) -> Doc | None:
    session = docs.get(SESSION, str(e.session_id))
    if session is None:
        return None
    change(session)
    docs.put(SESSION, str(e.session_id), e.centre_id, session)
    tutor = docs.get(TUTOR, session["tutorId"]) or _new_tutor(e.centre_id, session["tutorId"])
    tutor["sessions"][session["sessionId"]] = _tutor_session(session)
    if session["status"] in ("COMPLETED", "CANCELLED"):
        tutor["openHelp"] = {k: h for k, h in tutor["openHelp"].items()
                             if h["sessionId"] != session["sessionId"]}
    _prune(tutor, e)
    docs.put(TUTOR, session["tutorId"], e.centre_id, tutor)
    return session


def _session_started(docs: _Session, e: ev.SessionStarted) -> None:
    _session_update(docs, e, lambda s: s.update(status="LIVE", startedAt=_iso(e.occurred_at)))


def _session_ended(docs: _Session, e: ev.SessionEnded) -> None:
    _session_update(docs, e, lambda s: s.update(status="COMPLETED", endedAt=_iso(e.occurred_at)))


def _session_cancelled(docs: _Session, e: ev.SessionCancelled) -> None:
    _session_update(docs, e, lambda s: s.update(status="CANCELLED", cancelledAt=_iso(e.occurred_at),
                                                cancelReason=e.reason))


def _student(session: Doc, student_id: str) -> Doc:
    return session["students"].setdefault(student_id, {
        "studentId": student_id, "enrolled": False, "courseId": None, "lessonId": None,
        "attendance": None, "attendanceNotes": None, "markedAt": None, "markedBy": None,
        "helpRequests": {}, "catchUp": None})


def _student_enrolled(docs: _Session, e: ev.StudentEnrolled) -> None:
    def change(session: Doc) -> None:
        student = _student(session, str(e.student_id))
        student.update(enrolled=True, courseId=e.course_id, lessonId=e.lesson_id)

    _session_update(docs, e, change)


def _student_removed(docs: _Session, e: ev.StudentRemoved) -> None:
    _session_update(docs, e, lambda s: _student(s, str(e.student_id)).update(enrolled=False))


def _attendance_marked(docs: _Session, e: ev.AttendanceMarked) -> None:
    def change(session: Doc) -> None:
        _student(session, str(e.student_id)).update(
            attendance=str(e.status), attendanceNotes=e.notes, markedAt=_iso(e.occurred_at),
            markedBy=str(e.actor_id))

    _session_update(docs, e, change)


def _help_requested(docs: _Session, e: ev.HelpRequestRaised) -> None:
    request = {"helpRequestId": str(e.help_request_id), "sessionId": str(e.session_id),
               "studentId": str(e.student_id), "priority": str(e.priority), "status": "PENDING",
               "raisedAt": _iso(e.occurred_at), "slaDueAt": _iso(e.sla_due_at),
               "exerciseId": e.exercise_id, "message": e.message}

    def change(session: Doc) -> None:
        _student(session, str(e.student_id))["helpRequests"][request["helpRequestId"]] = request

    session = _session_update(docs, e, change)
    if session is not None and session["status"] == "LIVE":
        tutor = docs.get(TUTOR, session["tutorId"])
        assert tutor is not None
        tutor["openHelp"][request["helpRequestId"]] = request
        docs.put(TUTOR, session["tutorId"], e.centre_id, tutor)


def _catch_up(docs: _Session, e: ev.CatchUpAssigned | ev.CatchUpCancelled) -> None:
    catch_up_id = str(e.aggregate_id)

    def change(session: Doc) -> None:
        student = _student(session, str(e.student_id))
        if isinstance(e, ev.CatchUpAssigned):
            student["catchUp"] = {"catchUpId": catch_up_id, "status": "PENDING", "dueAt": _iso(e.due_at)}
        elif student["catchUp"] and student["catchUp"]["catchUpId"] == catch_up_id:
            student["catchUp"]["status"] = "CANCELLED"

    session = _session_update(docs, e, change)
    if session is None:
        return
    tutor = docs.get(TUTOR, session["tutorId"])
    assert tutor is not None
    if isinstance(e, ev.CatchUpAssigned):
        tutor["catchUps"][catch_up_id] = {"catchUpId": catch_up_id, "studentId": str(e.student_id),
                                          "sessionId": str(e.session_id), "sessionTitle": session["title"],
                                          "dueAt": _iso(e.due_at), "status": "PENDING"}
    else:
        tutor["catchUps"].pop(catch_up_id, None)
    docs.put(TUTOR, session["tutorId"], e.centre_id, tutor)


_HANDLERS: dict[type[ev.Event], Any] = {
    ev.CentreRegistered: _centre_registered,
    ev.PersonRegistered: _person_registered,
    ev.SessionScheduled: _session_scheduled,
    ev.SessionStarted: _session_started,
    ev.SessionEnded: _session_ended,
    ev.SessionCancelled: _session_cancelled,
    ev.StudentEnrolled: _student_enrolled,
    ev.StudentRemoved: _student_removed,
    ev.AttendanceMarked: _attendance_marked,
    ev.HelpRequestRaised: _help_requested,
    ev.CatchUpAssigned: _catch_up,
    ev.CatchUpCancelled: _catch_up,
}
