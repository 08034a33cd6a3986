"""The indexes of :mod:`shared.readmodels.documents.indexes`, kept by the projections of the
documents they index (help requests by :mod:`.seats`, catch-ups by :mod:`.catch_up`), in the
same batch."""

from __future__ import annotations

import msgspec

from shared import events as ev
from shared.readmodels.documents import (
    CLOSED_CATCH_UPS,
    HELP_INDEX,
    HELP_REQUESTS,
    OPEN_CATCH_UPS,
    CatchUp,
    CatchUpEntry,
    ClosedCatchUps,
    HelpIndex,
    HelpRequestsOfMonth,
    OpenCatchUps,
    Session,
    closed_catch_ups_key,
    help_month_key,
    month_of,
)
from shared.readmodels.documents.indexes import help_columns, help_facts, month_facts
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.batch import catch_ups_by_student_key as catch_ups_by_student_key


def index_help_request(docs: Batch, session: Session, student_id: str, request_id: str) -> None:
    """The facts of the request as the session now shows it, in its tutor's month of help
    requests: the month's columns written again from the facts of its requests. A month an
    earlier release wrote (whole requests, or the facts of each by id) gets the columns of
    every request it holds instead, as a rebuild would write it."""
    request = session.students[student_id].help_requests[request_id]
    centre_id, tutor_id = session.centre_id, session.tutor_id
    month = month_of(request.raised_at)
    key = help_month_key(centre_id, tutor_id, month)
    doc = docs.get(HELP_REQUESTS, key)
    if doc is None:
        doc = HelpRequestsOfMonth(centre_id=centre_id, tutor_id=tutor_id, month=month)
        index = docs.get(HELP_INDEX, centre_id) or HelpIndex(centre_id=centre_id)
        months = index.months.setdefault(tutor_id, [])
        if month not in months:
            months.append(month)
            months.sort()
            docs.put(HELP_INDEX, centre_id, centre_id, index)
    facts = month_facts(doc)
    facts[request_id] = help_facts(request)
    doc.columns, doc.ids = help_columns(facts)
    doc.facts, doc.requests = {}, {}
    docs.put(HELP_REQUESTS, key, centre_id, doc)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _by_student(docs: Batch, centre_id: str) -> OpenCatchUps:
    return docs.get(OPEN_CATCH_UPS, catch_ups_by_student_key(centre_id)) or OpenCatchUps(
        centre_id=centre_id
    )


def index_catch_up(docs: Batch, catch_up: CatchUp, session: Session) -> None:
    """The catch-up among its centre's open ones, or once finished, in the month it was due."""
    key = catch_up.catch_up_id
    centre_id, tutor_id = session.centre_id, session.tutor_id
    entry = CatchUpEntry(
        tutor_id=tutor_id,
        session_title=session.title,
        session_starts_at=session.starts_at,
        catch_up=msgspec.structs.replace(catch_up),
    )
    index = docs.get(OPEN_CATCH_UPS, centre_id) or OpenCatchUps(centre_id=centre_id)
    moved = bool(index.closed_by_student)
    if moved:
        # Written by an earlier release, with the counts per student: they move to their own
        # document, as a rebuild would have written them.
        by_student = _by_student(docs, centre_id)
        for student_id, count in index.closed_by_student.items():
            by_student.closed_by_student[student_id] = (
                by_student.closed_by_student.get(student_id, 0) + count
            )
        index.closed_by_student = {}
        docs.put(OPEN_CATCH_UPS, catch_ups_by_student_key(centre_id), centre_id, by_student)
    if catch_up.status in ev.OPEN_CATCH_UPS:
        index.open[key] = entry
        docs.put(OPEN_CATCH_UPS, centre_id, centre_id, index)
        return
    was_open = index.open.pop(key, None) is not None
    month = month_of(catch_up.due_at)
    closed_key = closed_catch_ups_key(centre_id, month)
    closed = docs.get(CLOSED_CATCH_UPS, closed_key) or ClosedCatchUps(
        centre_id=centre_id, month=month
    )
    counted = key in closed.rows
    closed.rows[key] = entry
    docs.put(CLOSED_CATCH_UPS, closed_key, centre_id, closed)
    if not counted:
        _count(index.closed_by_month, month)
        _count(index.closed_by_status, catch_up.status.value)
        _count(index.closed_by_tutor, tutor_id)
        by_student = _by_student(docs, centre_id)
        _count(by_student.closed_by_student, catch_up.student_id)
        docs.put(OPEN_CATCH_UPS, catch_ups_by_student_key(centre_id), centre_id, by_student)
    if was_open or not counted or moved:
        docs.put(OPEN_CATCH_UPS, centre_id, centre_id, index)
