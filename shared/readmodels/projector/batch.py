"""The unit of work of the projector: the documents and aggregate versions of one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared import events as ev
from shared.readmodels.documents import (
    CENTRE,
    HOMEWORK,
    PERSON,
    SESSION,
    STUDENT,
    TUTOR,
    D,
    Document,
    Kind,
    LogRow,
)
from shared.readmodels.store import StoredDoc, Transaction


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
    after: Document


_HOMEWORK_EVENTS = (
    ev.HomeworkAssigned,
    ev.HomeworkStarted,
    ev.HomeworkSubmitted,
    ev.HomeworkGraded,
)


class Batch:
    """The documents and aggregate versions of one transaction: each document is read once
    and written once per batch, however many of the batch's events touch it. Flush once."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._loaded: dict[tuple[str, str], StoredDoc[Any] | None] = {}
        self._unread: set[tuple[str, str]] = set()
        """Documents put whole before anything read them: read (for their version) at flush."""
        self._current: dict[tuple[str, str], tuple[Kind[Any], str, Document]] = {}
        self._touches: dict[tuple[str, str], int] = {}
        self._touched_by_event: set[tuple[str, str]] = set()
        self._versions: dict[str, int] = {}
        self._applied_versions: dict[str, int] = {}
        self._log: list[LogRow] = []
        self.position = 0
        """The notification id of the event being applied (for documents that keep it)."""

    def prefetch(self, events: Iterable[ev.Event]) -> None:
        """Read, in a few queries, what the batch's events will need, instead of one by one."""
        events = list(events)
        aggregate_ids = {str(e.aggregate_id) for e in events} - set(self._versions)
        if aggregate_ids:
            self._versions.update(self.tx.aggregate_versions(sorted(aggregate_ids)))
        sessions: set[str] = set()
        people: set[str] = set()
        centres: set[str] = set()
        students: set[str] = set()
        for e in events:
            student_id = getattr(e, "student_id", None)
            if student_id is not None:
                students.add(str(student_id))
            if isinstance(e, ev.SessionScopedEvent):
                sessions.add(str(e.session_id))
            elif isinstance(e, ev.PersonRegistered):
                people.add(str(e.aggregate_id))
            elif isinstance(e, ev.CentreRegistered):
                centres.add(e.centre_id)
        self._load_many(SESSION, sessions)
        self._load_many(PERSON, people)
        self._load_many(CENTRE, centres)
        whole_sessions = {
            str(e.session_id)
            for e in events
            if isinstance(e, ev.SessionScopedEvent) and getattr(e, "student_id", None) is None
        }
        for session_id in whole_sessions:  # their events change every student's document
            session = self.get(SESSION, session_id)
            if session is not None:
                students.update(session.students)
        self._load_many(STUDENT, students)
        homework_events = [e for e in events if isinstance(e, _HOMEWORK_EVENTS)]
        self._load_many(HOMEWORK, {str(e.aggregate_id) for e in homework_events})
        tutors = {
            doc.tutor_id
            for kind, _, doc in self._current.values()
            if kind is SESSION and isinstance(doc, SESSION.type)
        }
        tutors |= {
            str(e.teacher_id) for e in homework_events if not isinstance(e, ev.HomeworkStarted)
        }
        tutors |= {str(e.tutor_id) for e in events if isinstance(e, ev.SessionScheduled)}
        tutors |= {
            doc.teacher_id
            for kind, _, doc in self._current.values()
            if kind is HOMEWORK and isinstance(doc, HOMEWORK.type)
        }
        self._load_many(TUTOR, tutors)

    def _load_many(self, kind: Kind[D], keys: set[str]) -> None:
        missing = sorted(
            k
            for k in keys
            if (kind.name, k) not in self._loaded and (kind.name, k) not in self._unread
        )
        if not missing:
            return
        for key, stored in self.tx.get_many(kind, missing).items():
            self._loaded[(kind.name, key)] = stored
            if stored is not None:
                self._current[(kind.name, key)] = (kind, stored.centre_id, kind.copy(stored.doc))

    def _read_unread(self) -> None:
        """Read the documents that were put whole without a read, one query per kind, for
        their stored version (and what they were before the batch)."""
        by_kind: dict[str, tuple[Kind[Any], list[str]]] = {}
        for name, key in sorted(self._unread):
            by_kind.setdefault(name, (self._current[(name, key)][0], []))[1].append(key)
        for name, (kind, keys) in by_kind.items():
            for key, stored in self.tx.get_many(kind, keys).items():
                self._loaded[(name, key)] = stored
        self._unread.clear()

    def get(self, kind: Kind[D], key: str) -> D | None:
        """The document as the batch's events so far left it (a copy the caller may change,
        then :meth:`put`)."""
        if (kind.name, key) not in self._loaded and (kind.name, key) not in self._unread:
            stored = self.tx.get(kind, key)
            self._loaded[(kind.name, key)] = stored
            if stored is not None:
                self._current[(kind.name, key)] = (kind, stored.centre_id, kind.copy(stored.doc))
        current = self._current.get((kind.name, key))
        if current is None:
            return None
        doc = current[2]
        assert isinstance(doc, kind.type)  # kept under its own kind
        return doc

    def put(self, kind: Kind[D], key: str, centre_id: str, doc: D) -> None:
        """``doc`` is the document now. One that nothing in the batch read is not read here:
        its stored version is read at :meth:`flush`, with the others put that way."""
        if (kind.name, key) not in self._loaded:
            self._unread.add((kind.name, key))
        self._current[(kind.name, key)] = (kind, centre_id, doc)
        self._touched_by_event.add((kind.name, key))

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
        if self._unread:
            self._read_unread()
        changes: list[Change] = []
        stored: list[StoredDoc[Any]] = []
        for (name, key), count in self._touches.items():
            before = self._loaded[(name, key)]
            kind, centre_id, doc = self._current[(name, key)]
            version = (before.version if before else 0) + count
            stored.append(StoredDoc(kind, key, centre_id, version, doc))
            changes.append(
                Change(name, key, centre_id, version, before.doc if before else None, doc)
            )
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
