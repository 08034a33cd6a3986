"""Who may read which read model, and the views they get: shared by the query API and the
live gateway so that both show exactly the same thing to the same person."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

import msgspec

from shared import events
from shared.readmodels import views
from shared.readmodels.documents import (
    CENTRE,
    CLASS,
    CLOSED_CATCH_UPS,
    EXERCISE,
    HELP_INDEX,
    HELP_REQUESTS,
    HOMEWORK,
    OPEN_CATCH_UPS,
    PAPER,
    PERSON,
    SESSION,
    STUDENT,
    STUDENT_ALERTS,
    STUDENT_RISK,
    STUDENT_SESSIONS,
    TUTOR,
    CatchUp,
    CatchUpEntry,
    ClosedCatchUps,
    D,
    HelpIndex,
    JsonObject,
    Kind,
    LogRow,
    OpenCatchUps,
    OpenCatchUpsSummary,
    Paper,
    PaperStatus,
    Person,
    Session,
    Student,
    StudentAlerts,
    Tutor,
    as_json,
    closed_catch_ups_key,
    help_month_key,
    month_of,
    student_history_key,
)
from shared.readmodels.documents.indexes import HelpMonthColumns
from shared.readmodels.projector import Batch, apply
from shared.readmodels.projector.indexes import catch_ups_by_student_key
from shared.readmodels.store import MemoryTransaction, ReadStore, StoredDoc
from shared.readmodels.times import iso, parse
from shared.readmodels.views import paper as paper_views
from shared.readmodels.views.reports import catch_up_entry_rows, help_month_analytics
from shared.tenancy import Actor, Forbidden, Permission, Role, require

FULL_VIEW = frozenset({Role.SUPER_ADMIN, Role.CENTER_ADMIN, Role.CENTER_SUPERVISOR})
"""Roles that see every session, tutor and student of their centre."""


class NotVisible(Exception):
    """Nothing by that id in the actor's centre that they may see (HTTP 404)."""


@dataclass(frozen=True)
class View:
    """What a person is shown of a read model, and the version of the documents behind it."""

    version: int
    data: JsonObject


def names(store: ReadStore, ids: set[str]) -> dict[str, str]:
    """The names of those of ``ids`` who are people, read in one query."""
    return {key: stored.doc.name for key, stored in store.get_many(PERSON, sorted(ids)).items()}


def children_of(store: ReadStore, actor: Actor) -> set[str]:
    return {
        d.key
        for d in store.centre_docs(PERSON, actor.centre_id)
        if d.doc.guardian_id == str(actor.user_id)
    }


def _rows_visible_to(store: ReadStore, actor: Actor, session: Session) -> set[str] | None:
    """``None`` for the whole roster; otherwise the students whose rows the actor may see."""
    if actor.role in FULL_VIEW:
        return None
    if actor.role is Role.TEACHER:
        if actor.is_teacher_other_than(session.tutor_id):
            raise Forbidden("a TEACHER sees only their own sessions")
        return None
    if actor.role is Role.STUDENT:
        mine = {str(actor.user_id)}
    elif actor.role is Role.PARENT:
        # Their children among the session's students: the rows come from those alone, and
        # reading those few people is far cheaper than every person of the centre.
        seated = store.get_many(PERSON, sorted(session.students))
        mine = {key for key, p in seated.items() if p.doc.guardian_id == str(actor.user_id)}
    else:
        raise Forbidden(f"{actor.role} may not see sessions")
    enrolled = {sid for sid, seat in session.students.items() if seat.enrolled}
    if not mine & enrolled:
        raise NotVisible("no such session")  # never enrolled, or removed from it
    return mine


def _of_centre(store: ReadStore, actor: Actor, kind: Kind[D], key: UUID, what: str) -> StoredDoc[D]:
    """A document of the actor's centre; another centre's is as absent as a missing one."""
    stored = store.get(kind, str(key))
    if stored is None or stored.centre_id != actor.centre_id:
        raise NotVisible(f"no such {what}")
    return stored


def control_center(store: ReadStore, actor: Actor, session_id: UUID, now: datetime) -> View:
    require(actor, Permission.CONTROL_CENTER_VIEW)
    stored = _of_centre(store, actor, SESSION, session_id, "session")
    session = stored.doc
    rows = _rows_visible_to(store, actor, session)
    people = names(store, {session.tutor_id, *session.students})
    return View(stored.version, views.control_center(session, people, now, rows))


def control_center_at(store: ReadStore, actor: Actor, session_id: UUID, at: datetime) -> View:
    """The Control Center as it was at ``at``, replayed from the session's log: for auditors,
    supervisors and the session's tutor."""
    require(actor, Permission.SESSION_LOG_VIEW)
    current = _of_centre(store, actor, SESSION, session_id, "session").doc
    if actor.role not in FULL_VIEW and (
        actor.role is not Role.TEACHER or actor.is_teacher_other_than(current.tutor_id)
    ):
        raise Forbidden("only supervisors, admins and the session's tutor see past states")
    batch = Batch(MemoryTransaction())
    after = applied = 0
    while rows := store.session_log(str(session_id), after=after, limit=1000):
        for row in rows:
            if parse(row.occurred_at) <= at:
                apply(batch, events.decode(msgspec.json.encode(row.event)), row.notification_id)
                applied += 1
        after = rows[-1].notification_id
    batch.flush()
    session = batch.get(SESSION, str(session_id))
    if session is None:
        raise NotVisible("the session did not exist yet at that time")
    people = names(store, {session.tutor_id, *session.students})
    return View(applied, views.control_center(session, people, at))


def _student_seen_by(store: ReadStore, actor: Actor, student_id: UUID) -> StoredDoc[Person]:
    """The student's person, if the actor may see the student's overview: the student
    themselves, their parent, staff of their centre."""
    require(actor, Permission.STUDENT_OVERVIEW_VIEW)
    person = store.get(PERSON, str(student_id))
    if person is None or person.centre_id != actor.centre_id or person.doc.role is not Role.STUDENT:
        raise NotVisible("no such student")
    if actor.role is Role.STUDENT and student_id != actor.user_id:
        raise NotVisible("no such student")
    if actor.role is Role.PARENT and person.doc.guardian_id != str(actor.user_id):
        raise NotVisible("no such student")
    return person


def student_overview(store: ReadStore, actor: Actor, student_id: UUID, now: datetime) -> View:
    """For the student themselves, their parent, and staff of their centre."""
    person = _student_seen_by(store, actor, student_id)
    stored = store.get(STUDENT, str(student_id))
    student = (
        stored.doc if stored else Student(student_id=str(student_id), centre_id=actor.centre_id)
    )
    centre = store.get(CENTRE, actor.centre_id)
    staff = actor.role not in (Role.STUDENT, Role.PARENT)
    # Staff see the risk score: from the inputs the projection keeps with the student's
    # document (written in the same batches, so of the same version), else from the document.
    alerts = store.get(STUDENT_ALERTS, str(student_id)) if staff and stored else None
    people = {n.author_id for n in student.notes.values()}
    if staff:
        people |= (
            {s.assessed_by for s in student.subjects.values()}
            | {h.changed_by for s in student.subjects.values() for h in s.history}
            | {a.assigned_by for a in student.content_assignments.values()}
        )
    return View(
        stored.version if stored else 0,
        views.student_overview(
            student,
            person.doc.name,
            names(store, people),
            centre.doc.time_zone if centre else "UTC",
            now,
            staff=staff,
            alerts=alerts.doc if alerts and stored and alerts.version == stored.version else None,
        ),
    )


def student_sessions(store: ReadStore, actor: Actor, student_id: UUID, month: str | None) -> View:
    """The student's sessions of one month (``YYYY-MM``; by default the latest) among those
    their overview leaves out, oldest first, and the month before it that has some."""
    _student_seen_by(store, actor, student_id)
    stored = store.get(STUDENT, str(student_id))
    months = views.older_months(stored.doc) if stored else []
    shown = {s.session_id for s in views.overview_sessions(stored.doc)} if stored else set()
    if month is None:
        month = months[-1] if months else None
    history = (
        None
        if month is None
        else store.get(STUDENT_SESSIONS, student_history_key(str(student_id), month))
    )
    if history is not None and history.centre_id != actor.centre_id:
        history = None
    sessions = sorted(
        (
            s
            for s in (history.doc.sessions.values() if history else ())
            if s.session_id not in shown
        ),
        key=lambda s: (s.starts_at, s.session_id),
    )
    earlier = [m for m in months if month is not None and m < month]
    return View(
        history.version if history else 0,
        {
            "studentId": str(student_id),
            "month": month,
            "sessions": [as_json(s) for s in sessions],
            "next": earlier[-1] if earlier else None,
        },
    )


def class_roster(
    store: ReadStore,
    actor: Actor,
    class_id: UUID,
    order_name: views.OrderName = views.as_stored,
) -> View:
    """A class and its members, the active first, each group by name (``order_name``: the
    sort key of a stored name, which the answer's edge opens for the reader's centre)."""
    require(actor, Permission.CLASS_VIEW)
    stored = _of_centre(store, actor, CLASS, class_id, "class")
    cohort = stored.doc
    if actor.is_teacher_other_than(cohort.teacher_id):
        raise Forbidden("a TEACHER sees only their own classes")
    people = names(store, {cohort.teacher_id, *cohort.members})
    members = sorted(
        ({**as_json(m), "name": people.get(m.student_id)} for m in cohort.members.values()),
        key=lambda m: (
            m["status"] != events.MembershipStatus.ACTIVE,
            order_name(m["name"]) or m["studentId"],
        ),
    )
    active = sum(1 for m in cohort.members.values() if m.status is events.MembershipStatus.ACTIVE)
    return View(
        stored.version,
        {
            **as_json(cohort),
            "teacherName": people.get(cohort.teacher_id),
            "members": members,
            "enrolled": active,
            "placesLeft": cohort.capacity - active,
        },
    )


MY_DAY_STUDENTS: tuple[Kind[Student] | Kind[StudentAlerts], ...] = (
    STUDENT_ALERTS,
    STUDENT_RISK,
    STUDENT,
)
"""Where My Day finds what its alerts read of each student, in turn: ``student_alerts``; for a
student it is not written for yet (a store projected by an earlier release), the copy of their
document cut to what the risk score reads (``student_risk``), else their whole document."""


def my_day(
    store: ReadStore,
    actor: Actor,
    tutor_id: UUID | None,
    now: datetime,
    order_name: views.OrderName = views.as_stored,
) -> View:
    """A tutor's day; alerts that tie ordered by the student's name (``order_name``)."""
    require(actor, Permission.MY_DAY_VIEW)
    tutor_id = tutor_id or actor.user_id
    if tutor_id != actor.user_id and actor.role not in FULL_VIEW:
        raise Forbidden("only supervisors and admins see another tutor's day")
    centre = store.get(CENTRE, actor.centre_id)
    time_zone = centre.doc.time_zone if centre else "UTC"
    stored = store.get(TUTOR, str(tutor_id))
    if stored is not None and stored.centre_id != actor.centre_id:
        raise NotVisible("no such tutor")
    tutor = stored.doc if stored else Tutor(tutor_id=str(tutor_id), centre_id=actor.centre_id)
    taught = {s for session in tutor.sessions.values() for s in session.students}
    ids = (
        {str(tutor_id)}
        | {h.student_id for h in tutor.open_help.values()}
        | {c.student_id for c in tutor.catch_ups.values()}
        | {w.student_id for w in tutor.to_grade.values()}
        | {p.student_id for p in (tutor.paper or {}).values()}
        | {h.student_id for h in tutor.homework.values()}
        | taught
    )
    students: dict[str, Student | StudentAlerts] = {}
    wanted = taught
    for kind in MY_DAY_STUDENTS:
        if not wanted:
            break
        found = store.get_many(kind, sorted(wanted))
        students |= {key: d.doc for key, d in found.items() if d.centre_id == actor.centre_id}
        wanted = wanted - set(found)
    return View(
        stored.version if stored else 0,
        views.my_day(tutor, time_zone, names(store, ids), now, students, order_name),
    )


def exercise(store: ReadStore, actor: Actor, exercise_id: UUID) -> View:
    """A catalogue exercise; students see its questions but never its answer key."""
    require(actor, Permission.EXERCISE_VIEW)
    stored = _of_centre(store, actor, EXERCISE, exercise_id, "exercise")
    return View(stored.version, views.exercise(stored.doc, with_key=actor.role is not Role.STUDENT))


def exercise_catalogue(
    store: ReadStore, actor: Actor, *, course_id: str | None = None, include_retired: bool = False
) -> View:
    require(actor, Permission.EXERCISE_PUBLISH)
    found = sorted(
        (
            d.doc
            for d in store.centre_docs(EXERCISE, actor.centre_id)
            if (course_id is None or d.doc.course_id == course_id)
            and (include_retired or not d.doc.retired)
        ),
        key=lambda d: (d.course_id, d.title, d.exercise_id),
    )
    return View(0, {"exercises": [views.catalogue_row(d) for d in found]})


def homework(store: ReadStore, actor: Actor, homework_id: UUID, now: datetime) -> View:
    """Homework with its answers and mark: for its student, their parent, and staff."""
    require(actor, Permission.STUDENT_OVERVIEW_VIEW)
    stored = _of_centre(store, actor, HOMEWORK, homework_id, "homework")
    doc = stored.doc
    if actor.role is Role.STUDENT and doc.student_id != str(actor.user_id):
        raise NotVisible("no such homework")
    if actor.role is Role.PARENT and doc.student_id not in children_of(store, actor):
        raise NotVisible("no such homework")
    people = names(store, {doc.student_id, doc.teacher_id})
    return View(
        stored.version,
        {
            **as_json(doc),
            "studentName": people.get(doc.student_id),
            "teacherName": people.get(doc.teacher_id),
            "overdue": views.overdue(doc, now, events.OPEN_HOMEWORK),
        },
    )


def session_log(
    store: ReadStore, actor: Actor, session_id: UUID, *, after: int = 0, limit: int = 1000
) -> list[LogRow]:
    require(actor, Permission.SESSION_LOG_VIEW)
    session = _of_centre(store, actor, SESSION, session_id, "session").doc
    rows = _rows_visible_to(store, actor, session)
    log = store.session_log(str(session_id), after=after, limit=limit)
    if rows is None:
        return log
    return [row for row in log if row.about_student() in rows]


def log_entry(row: LogRow) -> dict[str, Any]:
    return {
        "position": row.notification_id,
        "occurredAt": row.occurred_at,
        "type": row.event_type,
        "actorId": row.actor_id,
        "actorRole": row.actor_role,
        "aggregateId": row.aggregate_id,
        "aggregateVersion": row.aggregate_version,
        "event": row.event,
    }


def _own_tutor(actor: Actor, tutor_id: UUID | None) -> str | None:
    """The tutor whose figures the actor asks for; a TEACHER may ask only for their own."""
    if actor.role is Role.TEACHER:
        if tutor_id is not None and actor.is_teacher_other_than(tutor_id):
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
    after: views.UrgencyKey | None = None
    """The urgency key of the last row of the previous page."""


def _wanted(catch_up: CatchUp, wanted: CatchUpFilter, now: datetime) -> bool:
    if wanted.status and catch_up.status != wanted.status:
        return False
    if wanted.overdue_only and not views.overdue(catch_up, now):
        return False
    if wanted.student_id and catch_up.student_id != str(wanted.student_id):
        return False
    if wanted.due_before is None and wanted.due_after is None:
        return True
    due = parse(catch_up.due_at)
    return not (
        (wanted.due_before and due >= wanted.due_before)
        or (wanted.due_after and due < wanted.due_after)
    )


_OPEN_CATCH_UPS_READ: Kind[OpenCatchUpsSummary] = Kind(OPEN_CATCH_UPS.name, OpenCatchUpsSummary)


def _month_range(start: str | None, end: str | None, months: Iterable[str]) -> list[str]:
    """Those of ``months`` (``YYYY-MM``) that [start, end] (times as documents hold them) can
    touch, in order."""
    return sorted(
        m
        for m in months
        if (start is None or m >= month_of(start)) and (end is None or m <= month_of(end))
    )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else iso(at)


CATCH_UP_EVENTS = 6
"""The most events one catch-up has: assigned, started, completed or cancelled, reminded,
overdue."""


def _events_behind(catch_up: CatchUp) -> int:
    """How many events shaped a catch-up (each sets one of its times). Counted without a
    generator: the list adds this up for every open catch-up of the centre on each read."""
    return (
        1
        + isinstance(catch_up.started_at, str)
        + isinstance(catch_up.completed_at, str)
        + isinstance(catch_up.cancelled_at, str)
        + isinstance(catch_up.reminded_at, str)
        + isinstance(catch_up.overdue_at, str)
    )


_catch_up = attrgetter("catch_up")
_catch_up_id = attrgetter("catch_up.catch_up_id")
_due_at = attrgetter("catch_up.due_at")
_due_and_id = attrgetter("catch_up.due_at", "catch_up.catch_up_id")


def catch_up_list(store: ReadStore, actor: Actor, wanted: CatchUpFilter, now: datetime) -> View:
    """The centre's catch-ups, most urgent first, for staff; a TEACHER sees those of their own
    sessions. Read from the centre's index (``open_catch_ups``, and the months of finished
    ones the page reaches, ``closed_catch_ups``), not from every catch-up it ever had.
    ``version`` counts the events behind the open catch-ups the filters match, and
    ``CATCH_UP_EVENTS`` for each finished one."""
    require(actor, Permission.CATCH_UP_LIST_VIEW)
    tutor = _own_tutor(actor, wanted.tutor_id)
    stored: StoredDoc[OpenCatchUps] | StoredDoc[OpenCatchUpsSummary] | None
    by_student: dict[str, int] = {}
    if wanted.student_id is None:
        stored = store.get(_OPEN_CATCH_UPS_READ, actor.centre_id)
    else:
        # The counts per student have a document of their own; an index written by an earlier
        # release still holds them (and moves them there at the next catch-up event).
        stored = store.get(OPEN_CATCH_UPS, actor.centre_id)
        counted = store.get(OPEN_CATCH_UPS, catch_ups_by_student_key(actor.centre_id))
        student = str(wanted.student_id)
        by_student[student] = sum(
            d.doc.closed_by_student.get(student, 0) for d in (stored, counted) if d is not None
        )
    index = stored.doc if stored else OpenCatchUps(centre_id=actor.centre_id)

    def matches(entry: CatchUpEntry) -> bool:
        return (tutor is None or entry.tutor_id == tutor) and _wanted(entry.catch_up, wanted, now)

    every = tutor is None and not (
        wanted.status
        or wanted.overdue_only
        or wanted.student_id
        or wanted.due_before
        or wanted.due_after
    )  # no filter: every catch-up matches
    # Most urgent first (views.catch_up_urgency: every catch-up the index holds as open is
    # open, so by due time and id), sorted on one text at a time: Python compares those much
    # faster than the urgency tuples, whose first items all tie.
    open_rows = list(index.open.values()) if every else list(filter(matches, index.open.values()))
    open_rows.sort(key=_catch_up_id)
    open_rows.sort(key=_due_at)
    finished_wanted = not wanted.overdue_only and wanted.status not in events.OPEN_CATCH_UPS
    months = (
        _month_range(_iso(wanted.due_after), _iso(wanted.due_before), index.closed_by_month)
        if finished_wanted
        else []
    )
    read: dict[str, StoredDoc[ClosedCatchUps]] = {}

    def closed_month(month: str) -> ClosedCatchUps | None:
        key = closed_catch_ups_key(actor.centre_id, month)
        if key not in read:
            found = store.get(CLOSED_CATCH_UPS, key)
            if found is None:
                return None
            read[key] = found
        return read[key].doc

    # How many finished ones match: from the index's counts when one of them answers it,
    # otherwise by reading the months the filters reach.
    filters = [
        (index.closed_by_status, wanted.status),
        (index.closed_by_tutor, tutor),
        (by_student, str(wanted.student_id) if wanted.student_id else None),
    ]
    given = [(counts, value) for counts, value in filters if value is not None]
    finished_total = 0
    if not finished_wanted:
        pass
    elif wanted.due_before is None and wanted.due_after is None and len(given) <= 1:
        counts, value = given[0] if given else (index.closed_by_month, None)
        finished_total = sum(counts.values()) if value is None else counts.get(value, 0)
    else:
        for month in months:
            closed = closed_month(month)
            finished_total += sum(1 for e in (closed.rows.values() if closed else ()) if matches(e))

    after = wanted.after
    first = 0  # the first open row past the cursor (open ones rank 0)
    if after is not None and after[0] >= 0:
        first = (
            bisect_right(open_rows, after[1:], key=_due_and_id) if after[0] == 0 else len(open_rows)
        )
    page = [
        (views.catch_up_urgency(e.catch_up), e) for e in open_rows[first : first + wanted.limit + 1]
    ]
    if page and len(page) == wanted.limit and finished_total and (after is None or after[0] == 0):
        # Open rows fill the page and a finished one (ranked after every open one) matches:
        # there is a next page, and no month of finished ones needs reading to know it.
        page.append(page[-1])
    elif len(page) <= wanted.limit and finished_wanted and finished_total:
        start = month_of(after[1]) if after is not None and after[0] == 1 else None
        for month in months:
            if start is not None and month < start:
                continue
            closed = closed_month(month)
            rows = sorted(
                (views.catch_up_urgency(e.catch_up), e)
                for e in (closed.rows.values() if closed else ())
                if matches(e)
            )
            page += [row for row in rows if after is None or row[0] > after]
            if len(page) > wanted.limit:
                break
    more = len(page) > wanted.limit
    page = page[: wanted.limit]
    shown = [e for _, e in page]
    people = names(store, {e.catch_up.student_id for e in shown} | {e.tutor_id for e in shown})
    # Grows with every event of a matching open catch-up, and more when one is finished (a
    # catch-up has at most CATCH_UP_EVENTS events): what others' catch-ups do leaves it be.
    version = sum(map(_events_behind, map(_catch_up, open_rows)))
    version += CATCH_UP_EVENTS * finished_total
    return View(
        version,
        {
            "catchUps": catch_up_entry_rows(shown, people, now),
            "total": len(open_rows) + finished_total,
            "next": views.page_cursor(page[-1][0]) if more else None,
        },
    )


HELP_MONTH_READ: Kind[HelpMonthColumns] = Kind(HELP_REQUESTS.name, HelpMonthColumns)
"""A tutor's month of help requests as the analytics read it: its columns, the ids skipped, the
facts or whole requests of a month an earlier release wrote decoded only if it has no
columns."""


def help_request_analytics(
    store: ReadStore,
    actor: Actor,
    start: datetime,
    end: datetime,
    tutor_id: UUID | None,
    now: datetime,
    order_name: views.OrderName = views.as_stored,
) -> View:
    """Help-request figures of the centre's tutors (a TEACHER: their own), from each tutor's
    months of help requests that [start, end) touches (``help_requests``, the facts of each
    request), not from every session. ``version`` counts the events behind the documents
    read."""
    require(actor, Permission.HELP_ANALYTICS_VIEW)
    tutor = _own_tutor(actor, tutor_id)
    stored = store.get(HELP_INDEX, actor.centre_id)
    index = stored.doc if stored else HelpIndex(centre_id=actor.centre_id)
    keys = [
        help_month_key(actor.centre_id, tutor_of, month)
        for tutor_of, months in index.months.items()
        if tutor is None or tutor_of == tutor
        for month in _month_range(iso(start), iso(end), months)
    ]
    found = store.get_many(HELP_MONTH_READ, keys)
    months = [month.doc for month in found.values()]
    people = names(store, {month.tutor_id for month in months})
    return View(
        (stored.version if stored else 0) + sum(d.version for d in found.values()),
        help_month_analytics(months, people, start, end, now, order_name),
    )


# --- paper work ----------------------------------------------------------------------------

_PAPER_STAFF = frozenset({*FULL_VIEW, Role.TEACHER})
"""Roles that see every upload of their centre."""


def _paper_of(store: ReadStore, actor: Actor, upload_id: UUID) -> StoredDoc[Paper]:
    """An upload the actor may see: staff any of their centre; a student those filed against
    their own work, a parent their children's; one not filed (yet) also its uploader."""
    require(actor, Permission.PAPER_VIEW)
    stored = _of_centre(store, actor, PAPER, upload_id, "upload")
    if actor.role in _PAPER_STAFF:
        return stored
    paper, me = stored.doc, str(actor.user_id)
    routing = paper.routing
    if routing is None:
        visible = paper.uploaded_by == me
    elif actor.role is Role.STUDENT:
        visible = routing.student_id == me
    else:
        visible = actor.role is Role.PARENT and routing.student_id in children_of(store, actor)
    if not visible:
        raise NotVisible("no such upload")
    return stored


def _marking_shown(actor: Actor, paper: Paper) -> bool:
    """Staff see the marking as it goes; students and parents once it is handed back."""
    return actor.role in _PAPER_STAFF or paper.status is PaperStatus.HANDED_BACK


def _paper_then(paper: Paper, moment: paper_views.AsOf) -> Paper:
    then = paper_views.as_of(paper, moment)
    if then is None:
        raise NotVisible("the upload did not exist yet at that time")
    return then


def paper_upload(
    store: ReadStore,
    actor: Actor,
    upload_id: UUID,
    urls: paper_views.BlobUrls,
    moment: paper_views.AsOf = paper_views.NOW,
) -> View:
    """One upload with its pages and marking, now or as it was at ``moment``."""
    stored = _paper_of(store, actor, upload_id)
    shown = _marking_shown(actor, stored.doc)
    paper = _paper_then(stored.doc, moment)
    routing = paper.routing
    people = names(
        store,
        {paper.uploaded_by} | ({routing.student_id, routing.teacher_id} if routing else set()),
    )
    return View(
        stored.version,
        paper_views.paper_view(
            paper,
            people,
            urls,
            marking_shown=shown,
            moment=moment,
            staff=actor.role in _PAPER_STAFF,
        ),
    )


@dataclass(frozen=True)
class PageInk:
    """A page's image (its key in the blob store) and the ink on it."""

    blob_key: str
    marks: list[events.paper.Mark]


def marked_page(
    store: ReadStore,
    actor: Actor,
    upload_id: UUID,
    page: int,
    moment: paper_views.AsOf = paper_views.NOW,
) -> PageInk:
    stored = _paper_of(store, actor, upload_id)
    shown = _marking_shown(actor, stored.doc)
    paper = _paper_then(stored.doc, moment)
    if not 0 <= page < len(paper.pages):
        raise NotVisible(f"no page {page}: the upload has {len(paper.pages)}")
    marks = paper_views.marks_on(paper, page) if shown else []
    return PageInk(paper.pages[page].blob_key, marks)


def paper_uploads(
    store: ReadStore,
    actor: Actor,
    status: PaperStatus | None,
    *,
    limit: int = 50,
    after: tuple[str, str] | None = None,
) -> View:
    """The centre's uploads, newest first, optionally of one status (staff: those not filed
    are waiting for someone to type their code in). ``after``: the upload time and id of the
    last row of the previous page."""
    require(actor, Permission.WORK_GRADE)
    if actor.role not in _PAPER_STAFF:
        raise Forbidden(f"{actor.role} may not list the centre's uploads")
    found = sorted(
        (
            d
            for d in store.centre_docs(PAPER, actor.centre_id)
            if status is None or d.doc.status is status
        ),
        key=lambda d: (d.doc.uploaded_at, d.doc.upload_id),
        reverse=True,
    )
    page = [d for d in found if after is None or (d.doc.uploaded_at, d.doc.upload_id) < after][
        :limit
    ]
    people = names(
        store,
        {d.doc.uploaded_by for d in page}
        | {d.doc.routing.student_id for d in page if d.doc.routing},
    )
    more = len(page) == limit and page[-1] is not found[-1]
    last = page[-1].doc if page else None
    return View(
        sum(d.version for d in found),
        {
            "uploads": [paper_views.paper_row(d.doc, people, staff=True) for d in page],
            "total": len(found),
            "next": f"{last.uploaded_at}|{last.upload_id}" if more and last else None,
        },
    )


def student_paper(store: ReadStore, actor: Actor, student_id: UUID) -> View:
    """The uploads filed against a student's work: for them, their parent and staff."""
    require(actor, Permission.PAPER_VIEW)
    person = store.get(PERSON, str(student_id))
    if person is None or person.centre_id != actor.centre_id or person.doc.role is not Role.STUDENT:
        raise NotVisible("no such student")
    if actor.role is Role.STUDENT and student_id != actor.user_id:
        raise NotVisible("no such student")
    if actor.role is Role.PARENT and person.doc.guardian_id != str(actor.user_id):
        raise NotVisible("no such student")
    stored = store.get(STUDENT, str(student_id))
    uploads = list((stored.doc.paper or {}).values()) if stored else []
    people = names(store, {str(student_id)} | {u.teacher_id for u in uploads})
    return View(
        stored.version if stored else 0,
        {
            "studentId": str(student_id),
            "name": person.doc.name,
            "uploads": paper_views.summary_rows(uploads, people),
        },
    )
