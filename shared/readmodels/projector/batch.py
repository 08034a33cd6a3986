"""The unit of work of the projector: the documents and aggregate versions of one transaction."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.events.notifications import (
    AllNotificationsRead,
    NotificationPreferencesSet,
    NotificationsRead,
)
from shared.notifications.audience import audience_of
from shared.notifications.rules import NOTIFYING_EVENTS, notifications_for
from shared.readmodels.documents import (
    CATCH_UP,
    CENTRE,
    CENTRE_STAFF,
    CLOSED_CATCH_UPS,
    HELP_REQUESTS,
    HOMEWORK,
    INBOX,
    OPEN_CATCH_UPS,
    PERSON,
    SESSION,
    STUDENT,
    STUDENT_SESSIONS,
    TUTOR,
    D,
    Document,
    Kind,
    LogRow,
    closed_catch_ups_key,
    help_month_key,
    month_of,
    student_history_key,
)
from shared.readmodels.ids import id_text
from shared.readmodels.store import Reads, StoredDoc, Transaction
from shared.readmodels.store.transaction import passed
from shared.readmodels.times import iso
from shared.tenancy.roles import Role


class OutOfOrder(Exception):
    """The event overtook an earlier event of its aggregate; try again once that is applied."""


@dataclass(frozen=True)
class Change:
    """A document a batch wrote: what it was before the batch, and what it is now."""

    kind: str
    key: str
    centre_id: str
    version: int
    before: Document | None
    """``None`` for a new document, or when the batch kept no ``before`` (see :class:`Batch`)."""
    after: Document


_HOMEWORK_EVENTS = (
    ev.HomeworkAssigned,
    ev.HomeworkStarted,
    ev.HomeworkSubmitted,
    ev.HomeworkGraded,
    ev.HomeworkDueReminderSent,
    ev.HomeworkBecameOverdue,
)

_STUDENT_UNREAD = (
    ev.ClassMemberAdded,
    ev.ClassMemberRemoved,
    ev.StudentAttendanceRecorded,
    ev.RepeatedAbsencesNoticed,
    ev.WorksheetPrinted,
)
"""Events that name a student whose document nothing reads for them: a class's members are
the class document's, and the attendance record's events and a printed worksheet change no
document of the student (a repeated absence's notification reads their ``person``)."""

_HELP_EVENTS = (
    ev.HelpRequestRaised,
    ev.HelpRequestAcknowledged,
    ev.HelpRequestStarted,
    ev.HelpRequestResolved,
    ev.HelpRequestCancelled,
    ev.HelpRequestClosed,
    ev.HelpRequestEscalated,
)

_INBOX_EVENTS = (NotificationsRead, AllNotificationsRead, NotificationPreferencesSet)
"""Events of a person's inbox (marking read, preferences), which read it."""

_CATCH_UP_MOVES = (ev.CatchUpStarted, ev.CatchUpCompleted, ev.CatchUpCancelled)
_CATCH_UP_TIMERS = (ev.CatchUpReminderSent, ev.CatchUpBecameOverdue)

TOLD_OF_ESCALATIONS = frozenset({Role.CENTER_SUPERVISOR, Role.CENTER_ADMIN})
"""The roles of a centre's staff (``centre_staff``), who are told of escalations."""


def catch_ups_by_student_key(centre_id: str) -> str:
    """The key of the ``open_catch_ups`` document that holds a centre's counts of finished
    catch-ups per student (``closed_by_student``) and nothing else: one entry for every
    student who ever finished one, which only a list filtered by student reads. The centre's
    own ``open_catch_ups`` document, which every read of the list decodes, keeps none, so it
    does not grow with the centre's past."""
    return f"{centre_id}:by-student"


TO_MARK = ev.HomeworkStatus.SUBMITTED
"""The status of the homework a tutor's document holds: handed in, waiting for their mark
(what My Day lists to grade). Only a homework event that moves a homework into, within or out
of it reads the tutor's document (:func:`.tutor.homework_to_mark`)."""


class Written:
    """What a rebuild wrote to its new generation, kept between its transactions: until the
    switch it is the generation's only writer, so it need not read back (or lock) what it
    wrote. Every aggregate's version is kept; documents are kept up to ``limit``, the least
    recently used forgotten first (and read again if an event needs one)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self.docs: OrderedDict[tuple[str, str], StoredDoc[Any]] = OrderedDict()
        self.versions: dict[str, int] = {}
        self.complete = True
        """Nothing was forgotten yet: a document that is not here does not exist."""

    def keep(self, docs: Sequence[StoredDoc[Any]]) -> None:
        for doc in docs:
            key = (doc.kind.name, doc.key)
            self.docs[key] = doc
            self.docs.move_to_end(key)
        while len(self.docs) > self.limit:
            self.docs.popitem(last=False)
            self.complete = False


class Batch:
    """The documents and aggregate versions of one transaction: each document is read once
    and written once per batch, however many of the batch's events touch it. Flush once.

    With ``written`` (a rebuild before its switch), documents and versions the rebuild wrote
    itself are taken from there rather than read, without a copy, and :meth:`flush` reports
    no changes (nobody follows a generation that is not current yet).

    With ``before=False`` (the projection service, whose change notices carry a document's
    kind, key and version only), each :class:`Change` has no ``before``: a document read is
    changed as read rather than copied first, and one put whole without a read is not read at
    all: the store adds the events that touched it to its stored version (:meth:`flush`)."""

    def __init__(
        self, tx: Transaction, written: Written | None = None, *, before: bool = True
    ) -> None:
        self.tx = tx
        self._written = written
        self._keep_before = before
        self._loaded: dict[tuple[str, str], StoredDoc[Any] | None] = {}
        self._unread: set[tuple[str, str]] = set()
        """Documents put whole before anything read them: read (for their version) at flush."""
        self._current: dict[tuple[str, str], tuple[Kind[Any], str, Document]] = {}
        self._derived: dict[tuple[str, str], tuple[Kind[Any], str, Callable[[], Document]]] = {}
        """Documents put by :meth:`put_derived`, worked out when read or flushed."""
        self._touches: dict[tuple[str, str], int] = {}
        self._touched_by_event: set[tuple[str, str]] = set()
        self._versions: dict[str, int] = {}
        self._applied_versions: dict[str, int] = {}
        self._log: list[LogRow] = []
        self.erased_blobs: list[str] = []
        """Keys of uploaded files an erasure in the batch deleted (:meth:`erase_blobs`)."""
        self.position = 0
        """The notification id of the event being applied (for documents that keep it)."""

    def prefetch(self, events: Iterable[ev.Event]) -> None:
        """Read what the batch's events will read, a step per layer of what names what (on
        PostgreSQL a round trip each) instead of one by one: what the events name (with a
        notification's centre, its staff and student, a catch-up's document), then the
        students of whole sessions' rosters and the person documents of a notified session's
        students (if any are not read yet), then the students' months, the tutors and their
        months of help requests, the catch-ups' indexes and the inboxes told, which the
        sessions, homework, catch-ups and people read before name.

        Only documents the events' projections read: a document put whole without a read (a
        new centre, person or homework) is not read here, nor a tutor's document for homework
        that neither waits for their mark nor stops waiting. A document missed here is read
        when it is needed."""
        events = list(events)
        sessions: set[str] = set()
        students: set[str] = set()
        homework: set[str] = set()
        assigned: set[str] = set()
        rosters_of: set[str] = set()
        centres: set[str] = set()
        staff: set[str] = set()
        people: set[str] = set()
        inboxes: set[str] = set()
        catch_ups: set[str] = set()
        notifying = catching_up = False
        for e in events:
            student_id = getattr(e, "student_id", None)
            if student_id is not None and not isinstance(e, _STUDENT_UNREAD):
                students.add(id_text(student_id))
            if isinstance(e, ev.SessionScopedEvent):
                sessions.add(id_text(e.session_id))
                if student_id is None and not isinstance(e, ev.SessionScheduled):
                    rosters_of.add(id_text(e.session_id))  # its events change every student's
            elif isinstance(e, ev.HomeworkAssigned):
                assigned.add(id_text(e.aggregate_id))
            elif isinstance(e, _HOMEWORK_EVENTS):
                homework.add(id_text(e.aggregate_id))
            if isinstance(e, NOTIFYING_EVENTS):  # its audience (audience_of)
                notifying = True
                centres.add(e.centre_id)
                staff.add(e.centre_id)
                if student_id is not None:
                    people.add(id_text(student_id))
            elif isinstance(e, ev.CentreHelpSlasChanged | ev.CentreSessionLengthChanged):
                centres.add(e.centre_id)
            elif isinstance(e, ev.PersonRegistered) and e.role in TOLD_OF_ESCALATIONS:
                staff.add(e.centre_id)  # they join it
            elif isinstance(e, _INBOX_EVENTS):
                inboxes.add(id_text(e.person_id))
            if isinstance(e, ev.CatchUpAssigned):
                catching_up = True
            elif isinstance(e, _CATCH_UP_MOVES):
                catch_ups.add(id_text(e.aggregate_id))
            elif isinstance(e, _CATCH_UP_TIMERS):
                catch_ups.add(id_text(e.catch_up_id))
        self._load(
            {
                SESSION: sessions,
                STUDENT: students,
                HOMEWORK: homework - assigned,
                CENTRE: centres,
                CENTRE_STAFF: staff,
                PERSON: people,
                INBOX: inboxes,
                CATCH_UP: catch_ups,
            },
            aggregates={id_text(e.aggregate_id) for e in events} - set(self._versions),
        )
        rosters: set[str] = set()
        for session_id in rosters_of:
            session = self.get(SESSION, session_id)
            if session is not None:
                rosters.update(session.students)
        told = self._enrolled_told(events) if notifying else set()
        self._load({STUDENT: rosters, PERSON: told})
        tutors = {
            doc.tutor_id
            for kind, _, doc in self._current.values()
            if kind is SESSION and isinstance(doc, SESSION.type)
        }
        tutors |= {id_text(e.tutor_id) for e in events if isinstance(e, ev.SessionScheduled)}
        tutors |= self._markers(events)
        self._load(
            {
                STUDENT_SESSIONS: self._months_of_students(events),
                TUTOR: tutors,
                HELP_REQUESTS: self._help_months(events),
                INBOX: self._told(events) if notifying else set(),
                **(self._catch_up_indexes(events) if catching_up or catch_ups else {}),
            }
        )

    def _stored(self, kind: Kind[D], key: str) -> D | None:
        """The document as read so far, without reading it (``None`` if it was not read)."""
        current = self._current.get((kind.name, key))
        doc = current[2] if current is not None else None
        return doc if isinstance(doc, kind.type) else None

    def _audiences(self, events: list[ev.Event]) -> Iterator[ev.Event]:
        """The notifying events whose audience the batch's earlier events leave as stored:
        their session (if any) was read and no earlier event of the batch schedules it, enrols
        a student in it or removes one (who the session's tutor and students are), and no
        person registers or is erased before them (a guardian, or the centre's staff)."""
        touched: set[str] = set()
        people_changed = False
        for e in events:
            session_id = id_text(e.session_id) if isinstance(e, ev.SessionScopedEvent) else None
            stored = session_id is None or (
                session_id not in touched and self._stored(SESSION, session_id) is not None
            )
            if isinstance(e, NOTIFYING_EVENTS) and stored and not people_changed:
                yield e
            if isinstance(e, ev.SessionScheduled | ev.StudentEnrolled | ev.StudentRemoved):
                touched.add(id_text(e.session_id))
            if isinstance(e, ev.PersonRegistered | ev.PersonDataErased):
                people_changed = True

    def _enrolled_told(self, events: list[ev.Event]) -> set[str]:
        """The person documents (names, guardians) of the enrolled students of the notifying
        events' sessions, as :func:`audience_of` reads them."""
        people: set[str] = set()
        for e in self._audiences(events):
            if isinstance(e, ev.SessionScopedEvent):
                session = self._stored(SESSION, id_text(e.session_id))
                if session is not None:
                    people.update(s for s, seat in session.students.items() if seat.enrolled)
        return people

    def _told(self, events: list[ev.Event]) -> set[str]:
        """The inboxes the notifying events deliver to: whom :func:`notifications_for` names
        with the audience as read so far (a document not read names nobody, so a miss is read
        when the notification is delivered)."""
        return {
            notification.person_id
            for e in self._audiences(events)
            for notification in notifications_for(e, audience_of(e, self._Stored(self)))
        }

    class _Stored:
        """The documents a batch read so far, as :func:`audience_of` asks for them."""

        def __init__(self, batch: Batch) -> None:
            self._batch = batch

        def get(self, kind: Kind[D], key: str) -> D | None:
            return self._batch._stored(kind, key)

    def _catch_up_indexes(self, events: list[ev.Event]) -> dict[Kind[Any], set[str]]:
        """The indexes of catch-ups the catch-up events will change (:func:`.indexes.
        index_catch_up`): their centre's open ones; once a catch-up is finished, the month it
        was due in and, when it first finishes, the counts per student. A catch-up's status
        and due time follow from its stored document, then the batch's events."""
        scheduled = {id_text(e.session_id) for e in events if isinstance(e, ev.SessionScheduled)}
        known: dict[str, tuple[ev.CatchUpStatus, str]] = {}
        wanted: dict[Kind[Any], set[str]] = {OPEN_CATCH_UPS: set(), CLOSED_CATCH_UPS: set()}
        for e in events:
            if not isinstance(e, (ev.CatchUpAssigned, *_CATCH_UP_MOVES, *_CATCH_UP_TIMERS)):
                continue
            session_id = id_text(e.session_id)
            if session_id not in scheduled and self._stored(SESSION, session_id) is None:
                continue  # the event waits for its session
            if isinstance(e, ev.CatchUpAssigned):
                key = id_text(e.aggregate_id)
                known[key] = (ev.CatchUpStatus.PENDING, iso(e.due_at))
                wanted[OPEN_CATCH_UPS].add(e.centre_id)
                continue
            key = id_text(e.catch_up_id if isinstance(e, _CATCH_UP_TIMERS) else e.aggregate_id)
            if key not in known:
                stored = self._stored(CATCH_UP, key)
                if stored is None:
                    continue  # assigned before catch-up documents were kept: not indexed
                known[key] = (stored.status, stored.due_at)
            was, due_at = known[key]
            now = was
            if isinstance(e, ev.CatchUpStarted):
                now = ev.CatchUpStatus.IN_PROGRESS
            elif isinstance(e, ev.CatchUpCompleted):
                now = ev.CatchUpStatus.COMPLETED
            elif isinstance(e, ev.CatchUpCancelled):
                now = ev.CatchUpStatus.CANCELLED
            known[key] = (now, due_at)
            wanted[OPEN_CATCH_UPS].add(e.centre_id)
            if now not in ev.OPEN_CATCH_UPS:
                wanted[CLOSED_CATCH_UPS].add(closed_catch_ups_key(e.centre_id, month_of(due_at)))
                if was in ev.OPEN_CATCH_UPS:  # counted once, when it first finishes
                    wanted[OPEN_CATCH_UPS].add(catch_ups_by_student_key(e.centre_id))
        return wanted

    def _markers(self, events: list[ev.Event]) -> set[str]:
        """The tutors whose documents the homework events will change: those of the homework
        that an event moves into, within or out of ``TO_MARK``, from its status as stored,
        then as the batch's events before leave it."""
        status: dict[str, tuple[str, ev.HomeworkStatus]] = {}
        tutors: set[str] = set()
        for e in events:
            if not isinstance(e, _HOMEWORK_EVENTS):
                continue
            key = id_text(e.aggregate_id)
            was: ev.HomeworkStatus | None = None
            if isinstance(e, ev.HomeworkAssigned):
                teacher = id_text(e.teacher_id)
            elif key in status:
                teacher, was = status[key]
            else:
                stored = self._current.get((HOMEWORK.name, key))
                if stored is None or not isinstance(stored[2], HOMEWORK.type):
                    continue  # not assigned yet: the event waits
                teacher, was = stored[2].teacher_id, stored[2].status
            if isinstance(e, ev.HomeworkAssigned):
                now = ev.HomeworkStatus.NOT_STARTED
            elif isinstance(e, ev.HomeworkStarted):
                now = ev.HomeworkStatus.IN_PROGRESS
            elif isinstance(e, ev.HomeworkSubmitted):
                now = e.status
            elif isinstance(e, ev.HomeworkGraded):
                now = ev.HomeworkStatus.GRADED
            else:
                assert was is not None
                now = was
            status[key] = (teacher, now)
            if now is TO_MARK or was is TO_MARK:
                tutors.add(teacher)
        return tutors

    def _help_months(self, events: list[ev.Event]) -> set[str]:
        """The months of help requests (``help_requests``) the help events will change: of
        the session's tutor, the month the request was raised in (as the stored session holds
        it, or as raised in the batch), as :func:`.indexes.index_help_request` writes them."""
        tutors: dict[str, str] = {}
        raised: dict[str, str] = {}
        keys: set[str] = set()
        for e in events:
            if isinstance(e, ev.SessionScheduled):
                tutors[id_text(e.session_id)] = id_text(e.tutor_id)
            if not isinstance(e, _HELP_EVENTS):
                continue
            session_id, request_id = id_text(e.session_id), id_text(e.help_request_id)
            current = self._current.get((SESSION.name, session_id))
            session = current[2] if current is not None else None
            if not isinstance(session, SESSION.type):
                session = None
            tutor = tutors.get(session_id) or (session.tutor_id if session else None)
            if isinstance(e, ev.HelpRequestRaised):
                at: str | None = iso(e.occurred_at)
                raised[request_id] = iso(e.occurred_at)
            else:
                at = raised.get(request_id)
                seat = session.students.get(id_text(e.student_id)) if session else None
                if at is None and seat is not None and request_id in seat.help_requests:
                    at = seat.help_requests[request_id].raised_at
            if tutor is not None and at is not None:
                keys.add(help_month_key(e.centre_id, tutor, month_of(at)))
        return keys

    def _months_of_students(self, events: list[ev.Event]) -> set[str]:
        """The ``student_sessions`` documents (a student's month) the session events will
        change: each student's entry for a session lives in the month it was placed in, else
        that of the session's start (as stored, or as scheduled or moved in the batch). A
        guess that misses is read when it is needed."""
        months: dict[str, set[str]] = {}
        roster: dict[str, set[str]] = {}
        keys: set[str] = set()
        for e in events:
            if not isinstance(e, ev.SessionScopedEvent):
                continue
            session_id = id_text(e.session_id)
            if session_id not in months:
                current = self._current.get((SESSION.name, session_id))
                session = current[2] if current is not None else None
                if isinstance(session, SESSION.type):
                    months[session_id] = {month_of(session.starts_at)}
                    roster[session_id] = set(session.students)
                else:
                    months[session_id], roster[session_id] = set(), set()
            if isinstance(e, ev.SessionScheduled | ev.SessionRescheduled):
                months[session_id].add(month_of(iso(e.starts_at)))
            if isinstance(e, ev.SessionScheduled):
                continue  # it changes the session and its tutor's document, no student's
            student_id = getattr(e, "student_id", None)
            if student_id is not None:
                roster[session_id].add(id_text(student_id))
            for sid in [id_text(student_id)] if student_id is not None else roster[session_id]:
                student = self._current.get((STUDENT.name, sid))
                placed = None
                if student is not None and isinstance(student[2], STUDENT.type):
                    placement = student[2].placement
                    if isinstance(placement, dict):
                        placed = placement.get(session_id)
                for month in [placed] if placed else months[session_id]:
                    keys.add(student_history_key(sid, month))
        return keys

    def _load(self, wanted: dict[Kind[Any], set[str]], aggregates: set[str] | None = None) -> None:
        """Read the documents of ``wanted`` not read yet (and the applied versions of
        ``aggregates``) in one step: those a rebuild wrote from what it keeps, the others from
        the store."""
        missing: dict[Kind[Any], list[str]] = {}
        for kind, keys in wanted.items():
            unread = sorted(
                k
                for k in keys
                if (kind.name, k) not in self._loaded and (kind.name, k) not in self._unread
            )
            if unread:
                missing[kind] = unread
        if self._written is not None:
            known = self._written.versions
            self._versions.update({a: known.get(a, 0) for a in aggregates or ()})
            for kind, among in missing.items():
                for key, stored in self._read(kind, among).items():
                    self._keep(kind, key, stored)
            return
        if not missing and not aggregates:
            return
        found = self.tx.read(Reads(docs=missing, aggregates=sorted(aggregates or ())))
        self._versions.update(found.aggregates)
        for kind, among in missing.items():
            for key in among:
                self._keep(kind, key, found.docs[(kind.name, key)])

    def _keep(self, kind: Kind[Any], key: str, stored: StoredDoc[Any] | None) -> None:
        self._loaded[(kind.name, key)] = stored
        if stored is not None:
            self._current[(kind.name, key)] = (kind, stored.centre_id, self._copy(stored))

    def _read(self, kind: Kind[Any], keys: list[str]) -> dict[str, StoredDoc[Any] | None]:
        """The stored documents of ``kind`` among ``keys`` (``None`` for missing ones): what
        the rebuild wrote, else from the store."""
        written = self._written
        if written is None:
            return self.tx.get_many(kind, keys)
        found: dict[str, StoredDoc[Any] | None] = {}
        unknown = []
        for key in keys:
            stored = written.docs.get((kind.name, key))
            if stored is not None or written.complete:
                found[key] = stored
            else:
                unknown.append(key)
        if unknown:
            found.update(self.tx.get_many(kind, unknown))
        return found

    def _copy(self, stored: StoredDoc[D]) -> D:
        """The document to change: a copy of the stored one, so that ``before`` stays as it was
        (a rebuild before its switch reports no changes and changes the one it keeps)."""
        if self._written is not None or not self._keep_before:
            return stored.doc
        return stored.kind.copy(stored.doc)

    def _flush_unread(self) -> list[Change]:
        """:meth:`flush` without ``before``, nor any read."""
        self._unread.clear()
        changes: list[Change] = []
        stored: list[StoredDoc[Any]] = []
        counted: list[StoredDoc[Any]] = []
        for (name, key), count in self._touches.items():
            kind, centre_id, doc = self._current[(name, key)]
            if (name, key) in self._loaded:
                before = self._loaded[(name, key)]
                version = (before.version if before else 0) + count
                stored.append(StoredDoc(kind, key, centre_id, version, doc))
                changes.append(Change(name, key, centre_id, version, None, doc))
            else:  # put whole: the store adds the count to its stored version
                counted.append(StoredDoc(kind, key, centre_id, count, doc))

        def settled(versions: dict[tuple[str, str], int]) -> None:
            changes.extend(
                Change(d.kind.name, d.key, d.centre_id, versions[(d.kind.name, d.key)], None, d.doc)
                for d in counted
            )

        if counted:  # first: on PostgreSQL its locks go before the writes held back
            self.tx.put_counted(counted, settled)
        if stored:
            self.tx.put_many(stored)
        if self._log:
            self.tx.append_logs(self._log)
        if self._applied_versions:
            self.tx.set_versions_past_skipped(list(self._applied_versions.items()))
        self._touches.clear()
        self._applied_versions.clear()
        self._log.clear()
        return changes

    def _read_before_writing(self) -> dict[str, int]:
        """In one step: the documents put whole without a read, for what they were (``before``
        is kept, or a rebuild), and the dead-lettered versions right after
        the aggregates' applied ones. Returns the version each applied aggregate reaches by
        passing those (a later version dead-lettered while this one was missing is passed now
        that this one is in, so the next one applies)."""
        unread: dict[Kind[Any], list[str]] = {}
        for name, key in sorted(self._unread):
            unread.setdefault(self._current[(name, key)][0], []).append(key)
        self._unread.clear()
        if self._written is not None:  # a new generation has no dead letters before its switch
            for kind, keys in unread.items():
                for key, stored in self._read(kind, keys).items():
                    self._loaded[(kind.name, key)] = stored
            return dict(self._applied_versions)
        if not unread and not self._applied_versions:
            return {}
        found = self.tx.read(
            Reads(
                docs=unread,
                skipped=sorted(self._applied_versions),
            )
        )
        self._loaded.update(found.docs)
        return passed(self._applied_versions, found.skipped)

    def get(self, kind: Kind[D], key: str) -> D | None:
        """The document as the batch's events so far left it (a copy the caller may change,
        then :meth:`put`)."""
        at = (kind.name, key)
        if at in self._derived:
            self._derive(at)
        if at not in self._loaded and at not in self._unread:
            self._load({kind: {key}})
        current = self._current.get(at)
        if current is None:
            return None
        doc = current[2]
        assert isinstance(doc, kind.type)  # kept under its own kind
        return doc

    def put(self, kind: Kind[D], key: str, centre_id: str, doc: D) -> None:
        """``doc`` is the document now. One that nothing in the batch read is not read here:
        its stored version is read at :meth:`flush`, with the others put that way."""
        at = self._putting(kind, key)
        self._derived.pop(at, None)
        self._current[at] = (kind, centre_id, doc)

    def put_derived(self, kind: Kind[D], key: str, centre_id: str, derive: Callable[[], D]) -> None:
        """Put the document ``derive()`` makes, worked out when it is read or the batch is
        flushed rather than now: a document derived from another that the batch's events change
        again and again (a rebuild's batch refreshes a student many times) is worked out once.
        ``derive`` must read what it derives from as the batch leaves it, not as it is now."""
        self._derived[self._putting(kind, key)] = (kind, centre_id, derive)

    def _putting(self, kind: Kind[Any], key: str) -> tuple[str, str]:
        """The document's place, touched by the event being applied (and, if nothing read the
        document, its version read at :meth:`flush`)."""
        at = (kind.name, key)
        if at not in self._loaded:
            self._unread.add(at)
        self._touched_by_event.add(at)
        return at

    def _derive(self, at: tuple[str, str]) -> None:
        kind, centre_id, derive = self._derived.pop(at)
        self._current[at] = (kind, centre_id, derive())

    def touched_by_event(self) -> bool:
        """Whether the event being applied put a document yet."""
        return bool(self._touched_by_event)

    def aggregate_version(self, aggregate_id: str) -> int:
        if aggregate_id not in self._versions:
            self._versions[aggregate_id] = (
                self._written.versions.get(aggregate_id, 0)
                if self._written is not None
                else self.tx.aggregate_version(aggregate_id)
            )
        return self._versions[aggregate_id]

    def applied(self, aggregate_id: str, version: int) -> None:
        """One event was applied: count the documents it touched, advance its aggregate."""
        for touched in self._touched_by_event:
            self._touches[touched] = self._touches.get(touched, 0) + 1
        self._touched_by_event.clear()
        self._versions[aggregate_id] = self._applied_versions[aggregate_id] = version

    def log(self, row: LogRow) -> None:
        self._log.append(row)

    def erase_blobs(self, keys: Iterable[str]) -> None:
        """The files under ``keys`` go with a person's erasure: whoever commits the batch
        deletes them from the blob store first (the projection service; a rebuild deletes
        nothing, the live projection did)."""
        for key in keys:
            if key not in self.erased_blobs:
                self.erased_blobs.append(key)

    def flush(self) -> list[Change]:
        """Write what the batch changed. A document's version counts the events that touched it
        (changed or not), so it is the same whatever order replicas applied them in.

        Without ``before`` (the projection service), nothing is read before writing: documents
        put whole without a read are written at their stored version plus their count, and the
        aggregates' versions passed their dead-lettered ones, by the store (on PostgreSQL by
        the upsert, whose answers come back with the commit). The changes of those documents
        join the list returned once the transaction commits."""
        while self._derived:
            self._derive(next(iter(self._derived)))
        if not self._keep_before and self._written is None:
            return self._flush_unread()
        reached = self._read_before_writing()
        changes: list[Change] = []
        stored: list[StoredDoc[Any]] = []
        for (name, key), count in self._touches.items():
            kind, centre_id, doc = self._current[(name, key)]
            before = self._loaded[(name, key)]  # every document was read by now
            version = (before.version if before else 0) + count
            was = before.doc if before is not None and self._keep_before else None
            stored.append(StoredDoc(kind, key, centre_id, version, doc))
            changes.append(Change(name, key, centre_id, version, was, doc))
        if stored:
            self.tx.put_many(stored)
        if self._log:
            self.tx.append_logs(self._log)
        if reached:
            self.tx.set_aggregate_versions(list(reached.items()))
            self._versions.update(reached)
        if self._written is not None:
            self._written.versions.update(reached)
            self._written.keep(stored)
            changes = []
        self._touches.clear()
        self._applied_versions.clear()
        self._log.clear()
        return changes
