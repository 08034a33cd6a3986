"""Applying events to read models, exactly once and in order per aggregate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from shared.readmodels.documents import (
    CATCH_UP,
    CENTRE,
    CLASS,
    EXERCISE,
    HOMEWORK,
    PERSON,
    SESSION,
    STUDENT,
    TUTOR,
    TUTOR_HISTORY_DAYS,
    new_student,
    new_tutor,
)
from shared.readmodels.store import Doc, LogRow, ReadStore, StoredDoc, Transaction
from shared.events import OPEN_CATCH_UPS, OPEN_HELP_REQUESTS
from shared.readmodels.views import parse
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


def _clone(doc: Doc) -> Doc:
    """A deep copy of a JSON document (msgspec's round trip is several times faster)."""
    return msgspec.json.decode(msgspec.json.encode(doc))  # type: ignore[no-any-return]


class Batch:
    """The documents and aggregate versions of one transaction: each document is read once
    and written once per batch, however many of the batch's events touch it. Flush once."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._loaded: dict[tuple[str, str], StoredDoc | None] = {}
        self._current: dict[tuple[str, str], tuple[str, Doc]] = {}
        self._touches: dict[tuple[str, str], int] = {}
        self._touched_by_event: set[tuple[str, str]] = set()
        self._versions: dict[str, int] = {}
        self._applied_versions: dict[str, int] = {}
        self._log: list[LogRow] = []

    def prefetch(self, events: Iterable[ev.Event]) -> None:
        """Read, in a few queries, what the batch's events will need, instead of one by one."""
        events = list(events)
        aggregate_ids = {str(e.aggregate_id) for e in events} - set(self._versions)
        if aggregate_ids:
            self._versions.update(self.tx.aggregate_versions(sorted(aggregate_ids)))
        wanted: dict[str, set[str]] = {SESSION: set(), PERSON: set(), CENTRE: set(), STUDENT: set()}
        for e in events:
            student_id = getattr(e, "student_id", None)
            if student_id is not None:
                wanted[STUDENT].add(str(student_id))
            if isinstance(e, ev.SessionScopedEvent):
                wanted[SESSION].add(str(e.session_id))
            elif isinstance(e, ev.PersonRegistered):
                wanted[PERSON].add(str(e.aggregate_id))
            elif isinstance(e, ev.CentreRegistered):
                wanted[CENTRE].add(e.centre_id)
        self._load_many(SESSION, wanted[SESSION])
        self._load_many(PERSON, wanted[PERSON])
        self._load_many(CENTRE, wanted[CENTRE])
        whole_sessions = {str(e.session_id) for e in events
                          if isinstance(e, ev.SessionScopedEvent) and getattr(e, "student_id", None) is None}
        for session_id in whole_sessions:  # their events change what every student's document shows
            current = self._current.get((SESSION, session_id))
            if current is not None:
                wanted[STUDENT].update(current[1]["students"])
        self._load_many(STUDENT, wanted[STUDENT])
        tutors = {doc["tutorId"] for (kind, _), (_, doc) in self._current.items()
                  if kind == SESSION and "tutorId" in doc}
        homework_events = [e for e in events if isinstance(e, ev.HomeworkAssigned | ev.HomeworkStarted
                                                          | ev.HomeworkSubmitted | ev.HomeworkGraded)]
        self._load_many(HOMEWORK, {str(e.aggregate_id) for e in homework_events})
        tutors |= {str(e.teacher_id) for e in homework_events if not isinstance(e, ev.HomeworkStarted)}
        tutors |= {doc["teacherId"] for (kind, _), (_, doc) in self._current.items() if kind == HOMEWORK}
        self._load_many(TUTOR, tutors)

    def _load_many(self, kind: str, keys: set[str]) -> None:
        missing = sorted(k for k in keys if (kind, k) not in self._loaded)
        if not missing:
            return
        for key, stored in self.tx.get_many(kind, missing).items():
            self._loaded[(kind, key)] = stored
            if stored is not None:
                self._current[(kind, key)] = (stored.centre_id, _clone(stored.doc))

    def get(self, kind: str, key: str) -> Doc | None:
        if (kind, key) not in self._loaded:
            stored = self.tx.get(kind, key)
            self._loaded[(kind, key)] = stored
            if stored is not None:
                self._current[(kind, key)] = (stored.centre_id, _clone(stored.doc))
        current = self._current.get((kind, key))
        return None if current is None else current[1]

    def put(self, kind: str, key: str, centre_id: str, doc: Doc) -> None:
        self.get(kind, key)
        self._current[(kind, key)] = (centre_id, doc)
        self._touched_by_event.add((kind, key))

    def aggregate_version(self, aggregate_id: str) -> int:
        if aggregate_id not in self._versions:
            self._versions[aggregate_id] = self.tx.aggregate_version(aggregate_id)
        return self._versions[aggregate_id]

    def applied(self, aggregate_id: str, version: int) -> None:
        """One event was applied: count the documents it touched, advance its aggregate."""
        for touched in self._touched_by_event:
            self._touches[touched] = self._touches.get(touched, 0) + 1
        self._touched_by_event.clear()
        self._versions[aggregate_id] = self._applied_versions[aggregate_id] = version

    def log(self, row: LogRow) -> None:
        self._log.append(row)

    def flush(self) -> list[Change]:
        """Write what the batch changed. A document's version counts the events that touched it
        (changed or not), so it is the same whatever order replicas applied them in."""
        changes, stored = [], []
        for (kind, key), count in self._touches.items():
            before = self._loaded[(kind, key)]
            centre_id, doc = self._current[(kind, key)]
            version = (before.version if before else 0) + count
            stored.append(StoredDoc(kind, key, centre_id, version, doc))
            changes.append(Change(kind, key, centre_id, version,
                                  before.doc if before else None, doc))
        if stored:
            self.tx.put_many(stored)
        if self._log:
            self.tx.append_logs(self._log)
        if self._applied_versions:
            # A later version dead-lettered while this one was missing (it waited too long, or
            # was discarded) is passed now that this one is in, so the next one applies.
            reached = self.tx.past_skipped(self._applied_versions)
            self.tx.set_aggregate_versions(list(reached.items()))
            self._versions.update(reached)
        self._touches.clear()
        self._applied_versions.clear()
        self._log.clear()
        return changes


_to_builtins = msgspec.to_builtins


def apply(batch: Batch, event: ev.Event, notification_id: int) -> bool:
    """Apply one event within ``batch``; ``False`` if it was applied before.

    Raises :class:`OutOfOrder` if an earlier event of the same aggregate is missing, or if the
    event needs a document that an event of another aggregate has not created yet.
    """
    aggregate_id = str(event.aggregate_id)
    applied = batch.aggregate_version(aggregate_id)
    if event.aggregate_version <= applied:
        return False
    if event.aggregate_version != applied + 1:
        raise OutOfOrder(f"{event.type_name} v{event.aggregate_version} of {aggregate_id} "
                         f"arrived before v{applied + 1}")
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(batch, event)
    if isinstance(event, ev.SessionScopedEvent):
        payload = _to_builtins(event)
        batch.log(LogRow(
            notification_id=notification_id, session_id=str(event.session_id),
            centre_id=event.centre_id, aggregate_id=aggregate_id,
            aggregate_version=event.aggregate_version, occurred_at=payload["occurredAt"],
            event_type=event.type_name, actor_id=str(event.actor_id),
            actor_role=str(event.actor_role), event=payload))
    batch.applied(aggregate_id, event.aggregate_version)
    return True


def apply_all(store: ReadStore, items: Iterable[tuple[ev.Event, int]],
              generation: int | None = None) -> list[Change]:
    """Apply events in order in one transaction (for rebuilds and tests)."""
    items = list(items)
    with store.transaction(generation) as tx:
        batch = Batch(tx)
        batch.prefetch(event for event, _ in items)
        for event, notification_id in items:
            apply(batch, event, notification_id)
        return batch.flush()


# --- how each event changes the documents ------------------------------------------------


def _iso(value: datetime) -> str:
    """UTC, to the microsecond, with a four-digit year: documents compare times as strings and
    views parse them back. (An instant that UTC cannot hold, a year-1 time east of Greenwich,
    is written as the first representable one rather than failing the event.)"""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = datetime.min.replace(tzinfo=UTC) if value.year == datetime.min.year else datetime.max.replace(
            tzinfo=UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _session_length_changed(docs: Batch, e: ev.CentreSessionLengthChanged) -> None:
    centre = docs.get(CENTRE, e.centre_id)
    assert centre is not None  # registered first: same aggregate, applied in order
    centre["maxSessionMinutes"] = e.max_session_minutes
    docs.put(CENTRE, e.centre_id, e.centre_id, centre)


def _centre_registered(docs: Batch, e: ev.CentreRegistered) -> None:
    docs.put(CENTRE, e.centre_id, e.centre_id, {
        "centreId": e.centre_id, "name": e.name, "timeZone": e.time_zone,
        "helpSlaMinutes": dict(e.help_sla_minutes)})


def _help_slas_changed(docs: Batch, e: ev.CentreHelpSlasChanged) -> None:
    centre = docs.get(CENTRE, e.centre_id)
    assert centre is not None  # registered first: same aggregate, applied in order
    centre["helpSlaMinutes"] = dict(e.help_sla_minutes)
    docs.put(CENTRE, e.centre_id, e.centre_id, centre)


def _person_registered(docs: Batch, e: ev.PersonRegistered) -> None:
    docs.put(PERSON, str(e.aggregate_id), e.centre_id, {
        "personId": str(e.aggregate_id), "name": e.name, "role": str(e.role),
        "guardianId": str(e.guardian_id) if e.guardian_id else None})


def _session_scheduled(docs: Batch, e: ev.SessionScheduled) -> None:
    session: Doc = {
        "sessionId": str(e.session_id), "centreId": e.centre_id, "title": e.title,
        "tutorId": str(e.tutor_id), "status": "SCHEDULED", "startsAt": _iso(e.starts_at),
        "endsAt": _iso(e.ends_at), "timeZone": e.time_zone, "mode": str(e.mode),
        "meetingLink": e.meeting_link, "location": e.location, "capacity": e.capacity,
        "classId": str(e.class_id) if e.class_id else None, "startedAt": None, "endedAt": None,
        "cancelledAt": None, "cancelReason": None, "students": {},
    }
    # Events of the session's seats may have been applied first (competing consumers).
    existing = docs.get(SESSION, str(e.session_id))
    if existing is not None:
        session["students"] = existing["students"]
    docs.put(SESSION, str(e.session_id), e.centre_id, session)
    _refresh_tutor(docs, session, e.occurred_at)


def _refresh_tutor(docs: Batch, session: Doc, at: datetime) -> None:
    """Recompute what the tutor's document holds about this session from the session itself,
    so the tutor document does not depend on the order events of different aggregates arrive.

    It keeps the sessions still to run or running and those that ended less than
    ``TUTOR_HISTORY_DAYS`` before ``asOf``, the latest time of the events that refreshed it
    (``at`` is the time of this one): never the wall clock, so a rebuild is identical, and a
    maximum, so the result is the same in whatever order replicas apply the events. Booking
    far ahead does not move it, so today's finished sessions stay in My Day."""
    sid = session["sessionId"]
    tutor = _tutor_doc(docs, session["centreId"], session["tutorId"])
    tutor["sessions"][sid] = {key: session[key] for key in (
        "sessionId", "title", "status", "startsAt", "endsAt", "timeZone", "mode", "location")} | {
        "students": sorted(i for i, s in session["students"].items() if s["enrolled"])}
    students = session["students"].values()
    tutor["openHelp"] = {k: h for k, h in tutor["openHelp"].items() if h["sessionId"] != sid} | (
        {h["helpRequestId"]: h for s in students for h in s["helpRequests"].values()
         if h["status"] in OPEN_HELP_REQUESTS} if session["status"] == "LIVE" else {})
    tutor["catchUps"] = {k: c for k, c in tutor["catchUps"].items() if c["sessionId"] != sid} | {
        c["catchUpId"]: c | {"studentId": s["studentId"], "sessionId": sid, "sessionTitle": session["title"]}
        for s in students for c in s["catchUps"].values() if c["status"] in OPEN_CATCH_UPS}
    tutor["toGrade"] = {k: w for k, w in tutor["toGrade"].items() if w["sessionId"] != sid} | {
        w["workId"]: {key: w[key] for key in ("workId", "title", "submittedAt", "maxScore")}
        | {"studentId": s["studentId"], "sessionId": sid, "sessionTitle": session["title"]}
        for s in students for w in s.get("work", {}).values() if w["status"] == "SUBMITTED"}
    tutor["asOf"] = max(tutor.get("asOf") or "", _iso(at))
    horizon = _iso(parse(tutor["asOf"]) - timedelta(days=TUTOR_HISTORY_DAYS))
    tutor["sessions"] = {key: x for key, x in tutor["sessions"].items()
                         if x["endsAt"] >= horizon or x["status"] in ("SCHEDULED", "LIVE")}
    docs.put(TUTOR, session["tutorId"], session["centreId"], tutor)


def _session_update(docs: Batch, e: ev.SessionScopedEvent, change: Any) -> Doc:
    session = docs.get(SESSION, str(e.session_id))
    if session is None or "tutorId" not in session:
        raise OutOfOrder(f"{e.type_name} of session {e.session_id} arrived before SessionScheduled")
    change(session)
    docs.put(SESSION, str(e.session_id), e.centre_id, session)
    _refresh_tutor(docs, session, e.occurred_at)
    student_id = getattr(e, "student_id", None)
    for sid in [str(student_id)] if student_id else list(session["students"]):
        _refresh_student(docs, session, sid)
    return session


def _student_doc(docs: Batch, centre_id: str, student_id: str) -> Doc:
    # A document written before a key existed gets it from the blank one.
    return new_student(student_id, centre_id) | (docs.get(STUDENT, student_id) or {})


def _tutor_doc(docs: Batch, centre_id: str, tutor_id: str) -> Doc:
    return new_tutor(tutor_id, centre_id) | (docs.get(TUTOR, tutor_id) or {})


def _refresh_student(docs: Batch, session: Doc, student_id: str) -> None:
    """What the student's own document holds about this session, recomputed from the session."""
    row = session["students"].get(student_id)
    if row is None:
        return
    student = _student_doc(docs, session["centreId"], student_id)
    student["sessions"][session["sessionId"]] = {
        "sessionId": session["sessionId"], "title": session["title"], "status": session["status"],
        "startsAt": session["startsAt"], "endsAt": session["endsAt"], "enrolled": row["enrolled"],
        "courseId": row["courseId"], "lessonId": row["lessonId"], "attendance": row["attendance"],
        "attendanceNotes": row["attendanceNotes"], "catchUps": row["catchUps"],
        "helpRequests": row["helpRequests"],
        "work": {k: {f: v for f, v in w.items() if f != "answers"} for k, w in row.get("work", {}).items()}}
    docs.put(STUDENT, student_id, session["centreId"], student)


def _class_changed(docs: Batch, e: ev.ClassCreated | ev.ClassUpdated | ev.ClassCancelled
                   | ev.ClassMemberAdded | ev.ClassMemberRemoved | ev.ClassSessionsScheduled) -> None:
    key = str(e.aggregate_id)
    cohort = docs.get(CLASS, key) or {"classId": key, "centreId": e.centre_id, "status": "ACTIVE",
                                      "members": {}}
    if isinstance(e, ev.ClassCreated | ev.ClassUpdated):
        cohort.update(name=e.name, subject=e.subject, teacherId=str(e.teacher_id), capacity=e.capacity)
    elif isinstance(e, ev.ClassCancelled):
        cohort.update(status="CANCELLED", cancelReason=e.reason)
    elif isinstance(e, ev.ClassSessionsScheduled):
        cohort.setdefault("sessions", {}).update(
            {str(sid): _iso(starts) for sid, starts in zip(e.session_ids, e.starts, strict=True)})
    elif isinstance(e, ev.ClassMemberAdded):
        cohort["members"][str(e.student_id)] = {"studentId": str(e.student_id), "status": "ACTIVE",
                                                 "joinedAt": _iso(e.occurred_at), "leftAt": None}
    else:
        cohort["members"][str(e.student_id)].update(status="DROPPED", leftAt=_iso(e.occurred_at))
    docs.put(CLASS, key, e.centre_id, cohort)


def _note_written(docs: Batch, e: ev.TutorNoteWritten) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    student["notes"][str(e.aggregate_id)] = {
        "noteId": str(e.aggregate_id), "authorId": str(e.actor_id), "visibility": str(e.visibility),
        "content": e.content, "sessionId": str(e.session_id) if e.session_id else None,
        "writtenAt": _iso(e.occurred_at), "editedAt": None, "redacted": False}
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _note_changed(docs: Batch, e: ev.TutorNoteEdited | ev.TutorNoteRedacted) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    note = student["notes"][str(e.aggregate_id)]  # written before: same aggregate, in order
    if isinstance(e, ev.TutorNoteEdited):
        note.update(content=e.content, visibility=str(e.visibility), editedAt=_iso(e.occurred_at))
    else:
        note.update(content=None, redacted=True, redactedAt=_iso(e.occurred_at))
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _subject_assessed(docs: Batch, e: ev.SubjectAssessed) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    earlier = student["subjects"].get(e.course_id, {}).get("history", [])
    student["subjects"][e.course_id] = {
        "courseId": e.course_id, "schoolGrade": e.school_grade, "workingLevel": e.working_level,
        "lastAssessedAt": _iso(e.occurred_at), "assessedBy": str(e.actor_id), "assessmentNotes": e.notes,
        "history": [*earlier, _level_entry(e, e.previous_working_level, e.working_level,
                                           ev.LevelChangeType.ASSESSMENT_RESULT, e.notes)
                    | {"schoolGrade": e.school_grade}]}
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _working_level_changed(docs: Batch, e: ev.WorkingLevelChanged) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    subject = student["subjects"][e.course_id]  # assessed before: same aggregate, in order
    subject["workingLevel"] = e.new_level
    subject["history"].append(_level_entry(e, e.previous_level, e.new_level, e.change_type, e.reason))
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _level_entry(e: ev.Event, previous: int | None, new: int, change_type: ev.LevelChangeType,
                 reason: str | None) -> Doc:
    return {"at": _iso(e.occurred_at), "previousLevel": previous, "newLevel": new,
            "changeType": str(change_type), "reason": reason, "changedBy": str(e.actor_id)}


def _content_assigned(docs: Batch, e: ev.ContentAssigned) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    assignments = student["contentAssignments"]
    assignment_id = str(e.assignment_id)
    if e.replaces is not None:
        assignments[str(e.replaces)].update(status="SUPERSEDED", endedAt=_iso(e.occurred_at),
                                            supersededBy=assignment_id)
    assignments[assignment_id] = {
        "assignmentId": assignment_id, "courseId": e.course_id, "lessonId": e.lesson_id,
        "exerciseId": e.exercise_id, "reason": e.reason,
        "sessionId": str(e.session_id) if e.session_id else None, "assignedBy": str(e.actor_id),
        "assignedAt": _iso(e.occurred_at), "status": "ACTIVE",
        "replaces": str(e.replaces) if e.replaces else None}
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _content_assignment_withdrawn(docs: Batch, e: ev.ContentAssignmentWithdrawn) -> None:
    student = _student_doc(docs, e.centre_id, str(e.student_id))
    student["contentAssignments"][str(e.assignment_id)].update(
        status="WITHDRAWN", endedAt=_iso(e.occurred_at), withdrawnBy=str(e.actor_id),
        withdrawReason=e.reason)
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


def _session_started(docs: Batch, e: ev.SessionStarted) -> None:
    _session_update(docs, e, lambda s: s.update(status="LIVE", startedAt=_iso(e.occurred_at)))


def _session_ended(docs: Batch, e: ev.SessionEnded) -> None:
    _session_update(docs, e, lambda s: s.update(status="COMPLETED", endedAt=_iso(e.occurred_at)))


def _session_cancelled(docs: Batch, e: ev.SessionCancelled) -> None:
    _session_update(docs, e, lambda s: s.update(status="CANCELLED", cancelledAt=_iso(e.occurred_at),
                                                cancelReason=e.reason))


def _session_rescheduled(docs: Batch, e: ev.SessionRescheduled) -> None:
    _session_update(docs, e, lambda s: s.update(startsAt=_iso(e.starts_at), endsAt=_iso(e.ends_at)))


def _session_mode_changed(docs: Batch, e: ev.SessionModeChanged) -> None:
    _session_update(docs, e, lambda s: s.update(mode=str(e.mode), meetingLink=e.meeting_link,
                                                location=e.location))


def _session_extended(docs: Batch, e: ev.SessionExtended) -> None:
    _session_update(docs, e, lambda s: s.update(endsAt=_iso(e.ends_at)))


def _student(session: Doc, student_id: str) -> Doc:
    student: Doc = session["students"].setdefault(student_id, {
        "studentId": student_id, "enrolled": False, "courseId": None, "lessonId": None,
        "attendance": None, "attendanceNotes": None, "markedAt": None, "markedBy": None,
        "helpRequests": {}, "catchUps": {}, "presence": None, "lastAttendedAt": None,
        "teaching": {"mode": "OBSERVE", "teachingSeconds": 0, "since": None}})
    return student


def _student_enrolled(docs: Batch, e: ev.StudentEnrolled) -> None:
    def change(session: Doc) -> None:
        student = _student(session, str(e.student_id))
        student.update(enrolled=True, courseId=e.course_id, lessonId=e.lesson_id)

    _session_update(docs, e, change)


def _student_lesson_changed(docs: Batch, e: ev.StudentLessonChanged) -> None:
    def change(session: Doc) -> None:
        _student(session, str(e.student_id)).update(
            courseId=e.course_id, lessonId=e.lesson_id, lessonChangedAt=_iso(e.occurred_at),
            lessonChangedBy=str(e.actor_id))

    _session_update(docs, e, change)


def _student_removed(docs: Batch, e: ev.StudentRemoved) -> None:
    _session_update(docs, e, lambda s: _student(s, str(e.student_id)).update(enrolled=False))


def _attendance_marked(docs: Batch, e: ev.AttendanceMarked) -> None:
    def change(session: Doc) -> None:
        _student(session, str(e.student_id)).update(
            attendance=str(e.status), attendanceNotes=e.notes, markedAt=_iso(e.occurred_at),
            markedBy=str(e.actor_id))

    _session_update(docs, e, change)


def _help_requested(docs: Batch, e: ev.HelpRequestRaised) -> None:
    request = {"helpRequestId": str(e.help_request_id), "sessionId": str(e.session_id),
               "studentId": str(e.student_id), "priority": str(e.priority), "status": "PENDING",
               "raisedAt": _iso(e.occurred_at), "slaDueAt": _iso(e.sla_due_at),
               "exerciseId": e.exercise_id, "message": e.message}
    _session_update(docs, e, lambda s: _student(s, str(e.student_id))["helpRequests"].update(
        {request["helpRequestId"]: request}))


def _presence(docs: Batch, e: ev.StudentPresenceRecorded) -> None:
    def change(session: Doc) -> None:
        student = _student(session, str(e.student_id))
        presence = student.get("presence") or {"joinedAt": _iso(e.occurred_at)}
        presence.update(last=str(e.kind), lastSeenAt=_iso(e.occurred_at), activeSeconds=e.active_seconds,
                        present=e.kind not in (ev.PresenceKind.LEAVE, ev.PresenceKind.DISCONNECT))
        if e.kind is ev.PresenceKind.LEAVE:
            presence["leftAt"] = _iso(e.occurred_at)
        if e.kind in (ev.PresenceKind.JOIN, ev.PresenceKind.RECONNECT):
            presence["lastJoinedAt"] = _iso(e.occurred_at)
        student["presence"] = presence

    _session_update(docs, e, change)


def _teaching_switched(docs: Batch, e: ev.TeachingModeSwitched) -> None:
    def change(session: Doc) -> None:
        student = _student(session, str(e.student_id))
        teaching = e.mode is ev.TeachingMode.TEACH
        student["teaching"] = {"mode": str(e.mode), "teachingSeconds": e.teaching_seconds,
                               "since": _iso(e.occurred_at) if teaching else None}
        student["lastAttendedAt"] = _iso(e.occurred_at)

    _session_update(docs, e, change)


_HELP_MOVES: dict[type[ev.Event], tuple[str, str]] = {
    ev.HelpRequestAcknowledged: ("ACKNOWLEDGED", "acknowledgedAt"),
    ev.HelpRequestStarted: ("IN_PROGRESS", "startedAt"),
    ev.HelpRequestResolved: ("RESOLVED", "resolvedAt"),
    ev.HelpRequestCancelled: ("CANCELLED", "cancelledAt"),
    ev.HelpRequestClosed: ("CLOSED", "closedAt"),
}
"""The status a help request moves to with each event, and the time stamp it gets."""


def _help_moved(docs: Batch, e: ev.HelpRequestAcknowledged | ev.HelpRequestStarted
                | ev.HelpRequestResolved | ev.HelpRequestCancelled | ev.HelpRequestClosed) -> None:
    status, stamp = _HELP_MOVES[type(e)]

    def change(session: Doc) -> None:
        # Raised before it moves: both are events of the same seat, applied in version order.
        request = session["students"][str(e.student_id)]["helpRequests"][str(e.help_request_id)]
        request.update({"status": status, stamp: _iso(e.occurred_at)})
        if isinstance(e, ev.HelpRequestAcknowledged | ev.HelpRequestStarted | ev.HelpRequestResolved):
            request["handledBy"] = str(e.actor_id)  # the tutor came to the student
            session["students"][str(e.student_id)]["lastAttendedAt"] = _iso(e.occurred_at)
        if isinstance(e, ev.HelpRequestResolved):
            request["response"] = e.response
        if isinstance(e, ev.HelpRequestClosed):
            request["closeReason"] = str(e.reason)

    _session_update(docs, e, change)


def _catch_up_assigned(docs: Batch, e: ev.CatchUpAssigned) -> None:
    catch_up = {"catchUpId": str(e.aggregate_id), "status": "PENDING", "dueAt": _iso(e.due_at),
                "reason": e.reason}
    _session_update(docs, e, lambda s: _student(s, str(e.student_id))["catchUps"].update(
        {catch_up["catchUpId"]: catch_up}))
    _catch_up_listed(docs, e)  # after the session, which may not be there yet (OutOfOrder)


_CATCH_UP_MOVES: dict[type[ev.Event], tuple[str, str]] = {
    ev.CatchUpStarted: ("IN_PROGRESS", "startedAt"),
    ev.CatchUpCompleted: ("COMPLETED", "completedAt"),
    ev.CatchUpCancelled: ("CANCELLED", "cancelledAt"),
}
"""The status a catch-up moves to with each event, and the time stamp it gets."""


def _catch_up_moved(docs: Batch, e: ev.CatchUpStarted | ev.CatchUpCompleted | ev.CatchUpCancelled) -> None:
    status, stamp = _CATCH_UP_MOVES[type(e)]

    def change(session: Doc) -> None:
        # Assigned before it moves: both are events of the same catch-up, applied in order.
        session["students"][str(e.student_id)]["catchUps"][str(e.aggregate_id)].update(
            {"status": status, stamp: _iso(e.occurred_at)})

    _session_update(docs, e, change)
    _catch_up_listed(docs, e)


def _exercise_changed(docs: Batch, e: ev.ExercisePublished | ev.ExerciseRetired) -> None:
    key = str(e.aggregate_id)
    if isinstance(e, ev.ExercisePublished):
        docs.put(EXERCISE, key, e.centre_id, {
            "exerciseId": key, "title": e.title, "courseId": e.course_id, "exerciseType": str(e.exercise_type),
            "difficulty": str(e.difficulty), "instructions": e.instructions,
            "timeLimitMinutes": e.time_limit_minutes, "questions": _to_builtins(e.questions),
            "maxScore": e.max_score, "autoGradable": e.auto_gradable,
            "publishedAt": _iso(e.occurred_at), "publishedBy": str(e.actor_id), "retired": False})
        return
    exercise = docs.get(EXERCISE, key)
    assert exercise is not None  # published first: same aggregate, applied in order
    exercise.update(retired=True, retiredAt=_iso(e.occurred_at), retireReason=e.reason)
    docs.put(EXERCISE, key, e.centre_id, exercise)


def _work(session: Doc, student_id: str, work_id: UUID) -> Doc:
    # Assigned before it moves: all are events of the same seat, applied in version order.
    return _student(session, student_id).setdefault("work", {})[str(work_id)]  # type: ignore[no-any-return]


def _exercise_assigned(docs: Batch, e: ev.ExerciseAssigned) -> None:
    work = {"workId": str(e.work_id), "exerciseId": str(e.exercise_id), "title": e.title,
            "exerciseType": str(e.exercise_type), "difficulty": str(e.difficulty), "maxScore": e.max_score,
            "autoGradable": e.auto_gradable, "status": "ASSIGNED", "progress": 0,
            "assignedAt": _iso(e.occurred_at), "assignedBy": str(e.actor_id), "startedAt": None,
            "submittedAt": None, "gradedAt": None, "score": None, "feedback": None, "xpAwarded": 0}
    _session_update(docs, e, lambda s: _student(s, str(e.student_id)).setdefault("work", {}).update(
        {work["workId"]: work}))


def _exercise_moved(docs: Batch, e: ev.ExerciseStarted | ev.ExerciseProgressReported
                    | ev.ExerciseSubmitted | ev.ExerciseGraded) -> None:
    def change(session: Doc) -> None:
        work = _work(session, str(e.student_id), e.work_id)
        if isinstance(e, ev.ExerciseStarted):
            work.update(status="IN_PROGRESS", startedAt=_iso(e.occurred_at))
        elif isinstance(e, ev.ExerciseProgressReported):
            work.update(progress=e.percent, progressAt=_iso(e.occurred_at))
        elif isinstance(e, ev.ExerciseSubmitted):
            work.update(status=str(e.status), progress=100, submittedAt=_iso(e.occurred_at), score=e.score,
                        answers=dict(e.answers), xpAwarded=e.xp_awarded)
        else:
            work.update(status="GRADED", gradedAt=_iso(e.occurred_at), gradedBy=str(e.actor_id),
                        score=e.score, feedback=e.feedback, xpAwarded=e.xp_awarded)
        if not isinstance(e, ev.ExerciseGraded):  # the student's own doing shows they are active
            session["students"][str(e.student_id)]["lastActivityAt"] = _iso(e.occurred_at)

    _session_update(docs, e, change)


HOMEWORK_SUMMARY = ("homeworkId", "studentId", "teacherId", "title", "status", "dueAt", "maxScore",
                    "sessionId", "assignedAt", "submittedAt", "onTime", "autoScore", "score", "feedback",
                    "gradedAt", "xpAwarded")


def _homework_changed(docs: Batch, e: ev.HomeworkAssigned | ev.HomeworkStarted | ev.HomeworkSubmitted
                      | ev.HomeworkGraded) -> None:
    """The homework document, then what the student's and the marking tutor's documents hold
    about it, recomputed from it (all of one aggregate, so always in order)."""
    key = str(e.aggregate_id)
    if isinstance(e, ev.HomeworkAssigned):
        homework: Doc = {
            "homeworkId": key, "studentId": str(e.student_id), "teacherId": str(e.teacher_id),
            "title": e.title, "exerciseIds": [str(i) for i in e.exercise_ids], "maxScore": e.max_score,
            "dueAt": _iso(e.due_at), "sessionId": str(e.session_id) if e.session_id else None,
            "notes": e.notes, "status": "NOT_STARTED", "assignedAt": _iso(e.occurred_at),
            "assignedBy": str(e.actor_id), "startedAt": None, "submittedAt": None, "onTime": None,
            "answers": None, "autoScore": None, "score": None, "feedback": None, "gradedAt": None,
            "xpAwarded": 0}
    else:
        found = docs.get(HOMEWORK, key)
        assert found is not None  # assigned first: same aggregate, applied in order
        homework = found
    if isinstance(e, ev.HomeworkStarted):
        homework.update(status="IN_PROGRESS", startedAt=_iso(e.occurred_at))
    elif isinstance(e, ev.HomeworkSubmitted):
        homework.update(status=str(e.status), submittedAt=_iso(e.occurred_at), onTime=e.on_time,
                        answers=_to_builtins(e.answers), autoScore=e.auto_score, score=e.auto_score,
                        xpAwarded=e.xp_awarded)
    elif isinstance(e, ev.HomeworkGraded):
        homework.update(status="GRADED", score=e.score, feedback=e.feedback, gradedAt=_iso(e.occurred_at),
                        gradedBy=str(e.actor_id))
    docs.put(HOMEWORK, key, e.centre_id, homework)
    summary = {field: homework[field] for field in HOMEWORK_SUMMARY}
    student = _student_doc(docs, e.centre_id, homework["studentId"])
    student["homework"][key] = summary
    docs.put(STUDENT, homework["studentId"], e.centre_id, student)
    tutor = _tutor_doc(docs, e.centre_id, homework["teacherId"])
    tutor["homework"].pop(key, None)
    if homework["status"] != "GRADED":
        tutor["homework"][key] = summary
    docs.put(TUTOR, homework["teacherId"], e.centre_id, tutor)


_HANDLERS: dict[type[ev.Event], Any] = {
    ev.CentreRegistered: _centre_registered,
    ev.CentreHelpSlasChanged: _help_slas_changed,
    ev.CentreSessionLengthChanged: _session_length_changed,
    ev.PersonRegistered: _person_registered,
    ev.SessionScheduled: _session_scheduled,
    ev.SessionStarted: _session_started,
    ev.SessionEnded: _session_ended,
    ev.SessionCancelled: _session_cancelled,
    ev.SessionRescheduled: _session_rescheduled,
    ev.SessionModeChanged: _session_mode_changed,
    ev.SessionExtended: _session_extended,
    ev.StudentEnrolled: _student_enrolled,
    ev.StudentRemoved: _student_removed,
    ev.StudentLessonChanged: _student_lesson_changed,
    ev.AttendanceMarked: _attendance_marked,
    ev.HelpRequestRaised: _help_requested,
    ev.ClassCreated: _class_changed,
    ev.ClassUpdated: _class_changed,
    ev.ClassCancelled: _class_changed,
    ev.ClassMemberAdded: _class_changed,
    ev.ClassMemberRemoved: _class_changed,
    ev.ClassSessionsScheduled: _class_changed,
    ev.TutorNoteWritten: _note_written,
    ev.TutorNoteEdited: _note_changed,
    ev.TutorNoteRedacted: _note_changed,
    ev.StudentPresenceRecorded: _presence,
    ev.TeachingModeSwitched: _teaching_switched,
    ev.HelpRequestAcknowledged: _help_moved,
    ev.HelpRequestStarted: _help_moved,
    ev.HelpRequestResolved: _help_moved,
    ev.HelpRequestCancelled: _help_moved,
    ev.HelpRequestClosed: _help_moved,
    ev.CatchUpAssigned: _catch_up_assigned,
    ev.CatchUpStarted: _catch_up_moved,
    ev.CatchUpCompleted: _catch_up_moved,
    ev.CatchUpCancelled: _catch_up_moved,
    ev.ExercisePublished: _exercise_changed,
    ev.ExerciseRetired: _exercise_changed,
    ev.ExerciseAssigned: _exercise_assigned,
    ev.ExerciseStarted: _exercise_moved,
    ev.ExerciseProgressReported: _exercise_moved,
    ev.ExerciseSubmitted: _exercise_moved,
    ev.ExerciseGraded: _exercise_moved,
    ev.HomeworkAssigned: _homework_changed,
    ev.HomeworkStarted: _homework_changed,
    ev.HomeworkSubmitted: _homework_changed,
    ev.HomeworkGraded: _homework_changed,
    ev.SubjectAssessed: _subject_assessed,
    ev.WorkingLevelChanged: _working_level_changed,
    ev.ContentAssigned: _content_assigned,
    ev.ContentAssignmentWithdrawn: _content_assignment_withdrawn,
}


# --- documents kept beside the session's: each shaped only by its own aggregate's events ---


def _catch_up_listed(docs: Batch, e: ev.CatchUpAssigned | ev.CatchUpStarted | ev.CatchUpCompleted
                     | ev.CatchUpCancelled) -> None:
    key = str(e.aggregate_id)
    if isinstance(e, ev.CatchUpAssigned):
        docs.put(CATCH_UP, key, e.centre_id, {
            "catchUpId": key, "sessionId": str(e.session_id), "studentId": str(e.student_id),
            "reason": e.reason, "dueAt": _iso(e.due_at), "status": "PENDING",
            "assignedAt": _iso(e.occurred_at), "assignedBy": str(e.actor_id), "startedAt": None,
            "completedAt": None, "cancelledAt": None, "cancelReason": None})
        return
    catch_up = docs.get(CATCH_UP, key)
    if catch_up is None:  # assigned before catch-up documents were kept: a rebuild lists it
        return
    status, stamp = _CATCH_UP_MOVES[type(e)]
    catch_up.update({"status": status, stamp: _iso(e.occurred_at)})
    if isinstance(e, ev.CatchUpCancelled):
        catch_up["cancelReason"] = e.reason
    docs.put(CATCH_UP, key, e.centre_id, catch_up)


