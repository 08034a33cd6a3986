"""Who may read which read model, and the views they get: shared by the query API and the
live gateway so that both show exactly the same thing to the same person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from shared.readmodels import views
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
    new_student,
    new_tutor,
)
from shared.readmodels.store import Doc, LogRow, ReadStore, StoredDoc
from shared.events import OPEN_HOMEWORK
from shared.tenancy import Actor, Forbidden, Permission, Role, require

FULL_VIEW = frozenset({Role.SUPER_ADMIN, Role.CENTER_ADMIN, Role.CENTER_SUPERVISOR})


class NotVisible(Exception):
    """Nothing by that id in the actor's centre that they may see (HTTP 404)."""


@dataclass(frozen=True)
class View:
    version: int
    data: Doc


def names(store: ReadStore, ids: set[str]) -> dict[str, str]:
    """The names of those of ``ids`` who are people, read in one query."""
    return {key: doc.doc["name"] for key, doc in store.get_many(PERSON, sorted(ids)).items()}


def children_of(store: ReadStore, actor: Actor) -> set[str]:
    return {d.key for d in store.centre_docs(PERSON, actor.centre_id)
            if d.doc.get("guardianId") == str(actor.user_id)}


def _rows_visible_to(store: ReadStore, actor: Actor, session: Doc) -> set[str] | None:
    """``None`` for the whole roster; otherwise the students whose rows the actor may see."""
    if actor.role in FULL_VIEW:
        return None
    if actor.role in (Role.TEACHER,):
        if session["tutorId"] != str(actor.user_id):
            raise Forbidden("a TEACHER sees only their own sessions")
        return None
    if actor.role is Role.STUDENT:
        mine = {str(actor.user_id)}
    elif actor.role is Role.PARENT:
        mine = children_of(store, actor)
    else:
        raise Forbidden(f"{actor.role} may not see sessions")
    enrolled = {sid for sid, student in session["students"].items() if student["enrolled"]}
    if not mine & enrolled:
        raise NotVisible("no such session")  # never enrolled, or removed from it
    return mine


def _of_centre(store: ReadStore, actor: Actor, kind: str, key: UUID, what: str) -> StoredDoc:
    """A document of the actor's centre; another centre's is as absent as a missing one."""
    stored = store.get(kind, str(key))
    if stored is None or stored.centre_id != actor.centre_id:
        raise NotVisible(f"no such {what}")
    return stored


def _session(store: ReadStore, actor: Actor, session_id: UUID) -> tuple[int, Doc]:
    stored = _of_centre(store, actor, SESSION, session_id, "session")
    return stored.version, stored.doc


def control_center(store: ReadStore, actor: Actor, session_id: UUID, now: datetime) -> View:
    require(actor, Permission.CONTROL_CENTER_VIEW)
    version, session = _session(store, actor, session_id)
    rows = _rows_visible_to(store, actor, session)
    people = names(store, {session["tutorId"], *session["students"]})
    return View(version, views.control_center(session, people, now, rows))


def control_center_at(store: ReadStore, actor: Actor, session_id: UUID, at: datetime) -> View:
    """The Control Center as it was at ``at``, replayed from the session's log: for auditors,
    supervisors and the session's tutor."""
    from shared.readmodels.projector import Batch, apply
    from shared.readmodels.store import MemoryTransaction
    from shared import events

    require(actor, Permission.SESSION_LOG_VIEW)
    _, current = _session(store, actor, session_id)
    if actor.role not in FULL_VIEW and not (
            actor.role is Role.TEACHER and current["tutorId"] == str(actor.user_id)):
        raise Forbidden("only supervisors, admins and the session's tutor see past states")
    batch = Batch(MemoryTransaction())
    after = applied = 0
    while rows := store.session_log(str(session_id), after=after, limit=1000):
        for row in rows:
            if views.parse(row.occurred_at) <= at:
                apply(batch, events.decode(msgspec.json.encode(row.event)), row.notification_id)
                applied += 1
        after = rows[-1].notification_id
    batch.flush()
    session = batch.get(SESSION, str(session_id))
    if session is None:
        raise NotVisible("the session did not exist yet at that time")
    people = names(store, {session["tutorId"], *session["students"]})
    return View(applied, views.control_center(session, people, at))


def student_overview(store: ReadStore, actor: Actor, student_id: UUID, now: datetime) -> View:
    """For the student themselves, their parent, and staff of their centre."""
    require(actor, Permission.STUDENT_OVERVIEW_VIEW)
    person = store.get(PERSON, str(student_id))
    if person is None or person.centre_id != actor.centre_id or person.doc["role"] != "STUDENT":
        raise NotVisible("no such student")
    if actor.role is Role.STUDENT and student_id != actor.user_id:
        raise NotVisible("no such student")
    if actor.role is Role.PARENT and person.doc.get("guardianId") != str(actor.user_id):
        raise NotVisible("no such student")
    stored = store.get(STUDENT, str(student_id))
    student = new_student(str(student_id), actor.centre_id) | (stored.doc if stored else {})
    centre = store.get(CENTRE, actor.centre_id)
    staff = actor.role not in (Role.STUDENT, Role.PARENT)
    people = {n["authorId"] for n in student["notes"].values()}
    if staff:
        people |= {s["assessedBy"] for s in student["subjects"].values()} | {
            h["changedBy"] for s in student["subjects"].values() for h in s["history"]} | {
            a["assignedBy"] for a in student["contentAssignments"].values()}
    return View(stored.version if stored else 0, views.student_overview(
        student, person.doc["name"], names(store, people), centre.doc["timeZone"] if centre else "UTC",
        now, staff=staff))


def class_roster(store: ReadStore, actor: Actor, class_id: UUID) -> View:
    require(actor, Permission.CLASS_VIEW)
    stored = _of_centre(store, actor, CLASS, class_id, "class")
    cohort = stored.doc
    if actor.role is Role.TEACHER and cohort["teacherId"] != str(actor.user_id):
        raise Forbidden("a TEACHER sees only their own classes")
    people = names(store, {cohort["teacherId"], *cohort["members"]})
    members = sorted(({**m, "name": people.get(m["studentId"])} for m in cohort["members"].values()),
                     key=lambda m: (m["status"] != "ACTIVE", m["name"] or m["studentId"]))
    active = sum(1 for m in members if m["status"] == "ACTIVE")
    return View(stored.version, {**cohort, "teacherName": people.get(cohort["teacherId"]),
                                 "members": members, "enrolled": active,
                                 "placesLeft": cohort["capacity"] - active})


def my_day(store: ReadStore, actor: Actor, tutor_id: UUID | None, now: datetime) -> View:
    require(actor, Permission.MY_DAY_VIEW)
    tutor_id = tutor_id or actor.user_id
    if tutor_id != actor.user_id and actor.role not in FULL_VIEW:
        raise Forbidden("only supervisors and admins see another tutor's day")
    centre = store.get(CENTRE, actor.centre_id)
    time_zone = centre.doc["timeZone"] if centre else "UTC"
    stored = store.get(TUTOR, str(tutor_id))
    if stored is not None and stored.centre_id != actor.centre_id:
        raise NotVisible("no such tutor")
    tutor = new_tutor(str(tutor_id), actor.centre_id) | (stored.doc if stored else {})
    taught = {s for session in tutor["sessions"].values() for s in session["students"]}
    ids = {str(tutor_id)} | {h["studentId"] for h in tutor["openHelp"].values()} | {
        c["studentId"] for c in tutor["catchUps"].values()} | {
        w["studentId"] for w in [*tutor["toGrade"].values(), *tutor["homework"].values()]} | taught
    students = {key: doc.doc for key, doc in store.get_many(STUDENT, sorted(taught)).items()
                if doc.centre_id == actor.centre_id}
    return View(stored.version if stored else 0,
                views.my_day(tutor, time_zone, names(store, ids), now, students))


def exercise(store: ReadStore, actor: Actor, exercise_id: UUID) -> View:
    """A catalogue exercise; students see its questions but never its answer key."""
    require(actor, Permission.EXERCISE_VIEW)
    stored = _of_centre(store, actor, EXERCISE, exercise_id, "exercise")
    return View(stored.version, views.exercise(stored.doc, with_key=actor.role is not Role.STUDENT))


def exercise_catalogue(store: ReadStore, actor: Actor, *, course_id: str | None = None,
                       include_retired: bool = False) -> View:
    require(actor, Permission.EXERCISE_PUBLISH)
    found = sorted((d.doc for d in store.centre_docs(EXERCISE, actor.centre_id)
                    if (course_id is None or d.doc["courseId"] == course_id)
                    and (include_retired or not d.doc["retired"])),
                   key=lambda d: (d["courseId"], d["title"], d["exerciseId"]))
    rows = [{k: v for k, v in d.items() if k != "questions"} | {"questions": len(d["questions"])} for d in found]
    return View(0, {"exercises": rows})


def homework(store: ReadStore, actor: Actor, homework_id: UUID, now: datetime) -> View:
    """Homework with its answers and mark: for its student, their parent, and staff."""
    require(actor, Permission.STUDENT_OVERVIEW_VIEW)
    stored = _of_centre(store, actor, HOMEWORK, homework_id, "homework")
    doc = stored.doc
    if actor.role is Role.STUDENT and doc["studentId"] != str(actor.user_id):
        raise NotVisible("no such homework")
    if actor.role is Role.PARENT and doc["studentId"] not in children_of(store, actor):
        raise NotVisible("no such homework")
    people = names(store, {doc["studentId"], doc["teacherId"]})
    return View(stored.version, {**doc, "studentName": people.get(doc["studentId"]),
                                 "teacherName": people.get(doc["teacherId"]),
                                 "overdue": views.overdue(doc, now, OPEN_HOMEWORK)})


def session_log(store: ReadStore, actor: Actor, session_id: UUID, *, after: int = 0,
                limit: int = 1000) -> list[LogRow]:
    require(actor, Permission.SESSION_LOG_VIEW)
    _, session = _session(store, actor, session_id)
    rows = _rows_visible_to(store, actor, session)
    log = store.session_log(str(session_id), after=after, limit=limit)
    if rows is None:
        return log
    return [row for row in log if row.event.get("studentId") in rows]


def log_entry(row: LogRow) -> dict[str, Any]:
    return {"position": row.notification_id, "occurredAt": row.occurred_at, "type": row.event_type,
            "actorId": row.actor_id, "actorRole": row.actor_role, "aggregateId": row.aggregate_id,
            "aggregateVersion": row.aggregate_version, "event": row.event}


def _own_tutor(actor: Actor, tutor_id: UUID | None) -> str | None:
    """The tutor whose figures the actor asks for; a TEACHER may ask only for their own."""
    if actor.role is Role.TEACHER:
        if tutor_id is not None and tutor_id != actor.user_id:
            raise Forbidden("a TEACHER sees only their own sessions")
        return str(actor.user_id)
    return str(tutor_id) if tutor_id else None


@dataclass(frozen=True)
class CatchUpFilter:
    status: str | None = None
    overdue_only: bool = False
    tutor_id: UUID | None = None
    student_id: UUID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    limit: int = 50
    after: tuple[int, str, str] | None = None
    """The urgency key of the last row of the previous page."""


def catch_up_list(store: ReadStore, actor: Actor, wanted: CatchUpFilter, now: datetime) -> View:
    """The centre's catch-ups, most urgent first, for staff; a TEACHER sees those of their own
    sessions. ``version`` counts the events behind every catch-up the filters match."""
    require(actor, Permission.CATCH_UP_LIST_VIEW)
    tutor = _own_tutor(actor, wanted.tutor_id)
    catch_ups = store.centre_docs(CATCH_UP, actor.centre_id)
    sessions = store.get_many(SESSION, [c.doc["sessionId"] for c in catch_ups])
    matching: list[tuple[tuple[int, str, str], int, Doc, Doc]] = []
    for stored in catch_ups:
        catch_up, session = stored.doc, sessions.get(stored.doc["sessionId"])
        if session is None or (tutor and session.doc.get("tutorId") != tutor):
            continue
        due = views.parse(catch_up["dueAt"])
        if ((wanted.status and catch_up["status"] != wanted.status)
                or (wanted.overdue_only and not views.overdue(catch_up, now))
                or (wanted.student_id and catch_up["studentId"] != str(wanted.student_id))
                or (wanted.due_before and due >= wanted.due_before)
                or (wanted.due_after and due < wanted.due_after)):
            continue
        matching.append((views.catch_up_urgency(catch_up), stored.version, catch_up, session.doc))
    matching.sort(key=lambda m: m[0])
    after = wanted.after
    page = [m for m in matching if after is None or m[0] > after][:wanted.limit]
    people = names(store, {m[2]["studentId"] for m in page} | {m[3]["tutorId"] for m in page})
    rows = [views.catch_up_row(catch_up, session, people, now) for _, _, catch_up, session in page]
    more = len(page) == wanted.limit and page[-1] is not matching[-1]
    return View(sum(m[1] for m in matching), {
        "catchUps": rows, "total": len(matching),
        "next": views.page_cursor(page[-1][0]) if more else None})


def help_request_analytics(store: ReadStore, actor: Actor, start: datetime, end: datetime,
                           tutor_id: UUID | None, now: datetime) -> View:
    """Help-request figures of the centre's tutors (a TEACHER: their own). ``version`` counts
    the events behind the sessions the figures come from."""
    require(actor, Permission.HELP_ANALYTICS_VIEW)
    tutor = _own_tutor(actor, tutor_id)
    sessions = [s for s in store.centre_docs(SESSION, actor.centre_id)
                if "tutorId" in s.doc and (tutor is None or s.doc["tutorId"] == tutor)]
    people = names(store, {s.doc["tutorId"] for s in sessions})
    return View(sum(s.version for s in sessions),
                views.help_request_analytics([s.doc for s in sessions], people, start, end, now))
