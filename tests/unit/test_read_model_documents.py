"""Read-model documents are typed, and stored exactly as before they were.

``data/read_side_history.jsonl`` is the demo centre's history (and a class), and
``data/read_side_documents.jsonl`` the documents that the read side wrote for it when documents
were still plain dictionaries. A store written then keeps working without a rebuild: every
document reads back into its struct and writes out to the same bytes, and projecting the same
history today writes the same documents.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from shared import events
from shared.readmodels import access
from shared.readmodels.documents import KINDS, SESSION, STUDENT, TUTOR, encode
from shared.readmodels.projector import Batch, apply_all
from shared.readmodels.projector.registry import projection_of, projects
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor, Role
from tests.readside import read_store

DATA = Path(__file__).parent / "data"

KINDS_SINCE_TYPES = {
    "inbox",
    "centre_staff",
    "notification_channels",
    "contact",
    "paper",
    "help_requests",
    "help_index",
    "open_catch_ups",
    "closed_catch_ups",
    "student_sessions",
    "student_risk",
    "student_alerts",
}
"""Kinds of document that came after documents were typed: the data files predate them."""
FIELDS_SINCE_TYPES = {"student": ("months", "placement", "totals")}
"""Fields that documents gained since (a student's months of sessions): the data files predate
them, and they are left out of the comparison."""


def _without_fields_since(kind: str, doc: str) -> str | dict[str, Any]:
    if kind not in FIELDS_SINCE_TYPES:
        return doc
    parsed: dict[str, Any] = json.loads(doc)
    return {k: v for k, v in parsed.items() if k not in FIELDS_SINCE_TYPES[kind]}


def _homework_writes_since(history: list[tuple[events.Event, int]]) -> dict[str, int]:
    """The writes of each tutor's document that homework events no longer make: the document
    holds only homework handed in and waiting for the tutor's mark (``SUBMITTED``, what My Day
    lists), so an event of homework that neither was nor is left in that status (set, started,
    reminded, marked from the answer keys) leaves it alone. It held all the homework the tutor
    set until it was graded, and grew with the years by homework never handed in."""
    status: dict[str, events.HomeworkStatus] = {}
    teacher: dict[str, str] = {}
    fewer: dict[str, int] = {}
    for e, _ in history:
        key = str(e.aggregate_id)
        if isinstance(e, events.HomeworkAssigned):
            teacher[key] = str(e.teacher_id)
            before, status[key] = None, events.HomeworkStatus.NOT_STARTED
        elif key in status:
            before = status[key]
            if isinstance(e, events.HomeworkStarted):
                status[key] = events.HomeworkStatus.IN_PROGRESS
            elif isinstance(e, events.HomeworkSubmitted):
                status[key] = e.status
            elif isinstance(e, events.HomeworkGraded):
                status[key] = events.HomeworkStatus.GRADED
        else:
            continue
        if events.HomeworkStatus.SUBMITTED not in (before, status[key]):
            fewer[teacher[key]] = fewer.get(teacher[key], 0) + 1
    return fewer


def _as_written_now(row: dict[str, Any], fewer: dict[str, int]) -> dict[str, Any]:
    """A row written before documents were typed, as the read side writes it now."""
    row = {**row, "doc": _without_fields_since(row["kind"], row["doc"])}
    if row["kind"] != "tutor":
        return row
    doc = json.loads(row["doc"])
    doc["homework"] = {
        k: h for k, h in doc["homework"].items() if h["status"] == events.HomeworkStatus.SUBMITTED
    }
    return {
        **row,
        "version": row["version"] - fewer.get(row["key"], 0),
        "doc": encode(TUTOR.decode(json.dumps(doc))),
    }


def _history() -> list[tuple[events.Event, int]]:
    lines = (DATA / "read_side_history.jsonl").read_text().splitlines()
    return [
        (events.decode(json.dumps(item["event"]).encode()), item["notificationId"])
        for item in map(json.loads, lines)
    ]


def _documents_before_types() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (DATA / "read_side_documents.jsonl").read_text().splitlines()
    ]


def test_projecting_a_history_writes_the_documents_written_before_they_were_typed(
    tmp_path: Path,
) -> None:
    store = read_store(tmp_path)
    apply_all(store, _history())
    written = [
        {
            "kind": kind,
            "key": key,
            "centreId": centre,
            "version": version,
            "doc": _without_fields_since(kind, doc),
        }
        for kind, key, centre, version, doc in store.dump(store.generation())["rm_docs"]
        if kind not in KINDS_SINCE_TYPES
    ]
    store.close()
    fewer = _homework_writes_since(_history())
    assert written == [_as_written_now(row, fewer) for row in _documents_before_types()]
    assert sum(fewer.values()) > 0  # the history sets homework that is never handed in


def test_every_document_written_before_types_reads_and_writes_back_the_same_bytes() -> None:
    before = _documents_before_types()
    assert {row["kind"] for row in before} == set(KINDS) - KINDS_SINCE_TYPES
    for row in before:
        assert encode(KINDS[row["kind"]].decode(row["doc"])) == row["doc"], row["key"]


def _rewrite(store: ReadStore, path: Path, kind: str, key: str, change: Any) -> None:
    """Change a stored document's JSON as an earlier release might have written it."""
    table = f"rm_docs_{store.generation()}"
    with sqlite3.connect(path) as connection:
        (doc,) = connection.execute(
            f"SELECT doc FROM {table} WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        parsed = json.loads(doc)
        change(parsed)
        connection.execute(
            f"UPDATE {table} SET doc = ? WHERE kind = ? AND key = ?",
            (json.dumps(parsed, sort_keys=True), kind, key),
        )


def test_documents_from_before_a_field_existed_are_read_with_its_default(tmp_path: Path) -> None:
    """Fields added over time (a tutor's homework, a student's content assignments, a seat's
    teaching time, a student session's work) are absent from older documents: they read as
    blank, the views show them, and the next event writes them."""
    history = _history()
    store = read_store(tmp_path)
    apply_all(store, history[:-20])
    tutor_id = next(d.key for d in store.docs(TUTOR))
    session = next(d for d in store.docs(SESSION) if d.doc.students)
    student_id = next(iter(session.doc.students))
    path = tmp_path / "read.sqlite"
    _rewrite(
        store, path, "tutor", tutor_id, lambda d: [d.pop(k, None) for k in ("homework", "asOf")]
    )
    _rewrite(
        store,
        path,
        "student",
        student_id,
        lambda d: (
            [d.pop(k) for k in ("contentAssignments", "homework")]
            + [s.pop(k, None) for s in d["sessions"].values() for k in ("work", "helpRequests")]
        ),
    )
    _rewrite(
        store,
        path,
        "session",
        session.key,
        lambda d: [d["students"][student_id].pop(k, None) for k in ("teaching", "lastAttendedAt")],
    )

    tutor = store.get(TUTOR, tutor_id)
    student = store.get(STUDENT, student_id)
    seat = store.get(SESSION, session.key)
    assert tutor is not None and tutor.doc.homework == {}
    assert student is not None and student.doc.content_assignments == {}
    assert seat is not None and seat.doc.students[student_id].teaching.teaching_seconds == 0
    admin = next(
        Actor(user_id=UUID(p.key), role=Role.CENTER_ADMIN, centre_id=p.centre_id)
        for p in store.docs("person")
        if p.doc["role"] == "CENTER_ADMIN"
    )
    now = history[-1][0].occurred_at
    assert access.control_center(store, admin, UUID(session.key), now).data["students"]
    assert access.student_overview(store, admin, UUID(student_id), now).data["studentId"] == (
        student_id
    )
    assert access.my_day(store, admin, UUID(tutor_id), now).data["tutorId"] == tutor_id
    apply_all(store, history[-20:])  # the rest of the history applies on top
    store.close()


def test_a_projection_takes_the_event_types_it_is_registered_for_and_no_other(
    tmp_path: Path,
) -> None:
    def again(docs: Batch, e: events.SessionStarted) -> None:
        raise AssertionError("never registered")

    with pytest.raises(TypeError, match="projected twice"):
        projects(events.SessionStarted)(again)
    assert projection_of(events.CommandReceiptRecorded) is None  # ignored by the read models
    started = projection_of(events.SessionStarted)
    ended = next(e for e, _ in _history() if isinstance(e, events.SessionEnded))
    assert started is not None
    store = read_store(tmp_path)
    with store.transaction() as tx, pytest.raises(TypeError, match="projects SessionStarted"):
        started(Batch(tx), ended)
    store.close()
