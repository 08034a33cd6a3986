"""The ``tutor`` document (the source of My Day), recomputed from the session documents."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from shared import events as ev
from shared.readmodels.documents import (
    TUTOR,
    HomeworkSummary,
    Session,
    ToGrade,
    Tutor,
    TutorCatchUp,
    TutorSession,
    work_of,
)
from shared.readmodels.projector.batch import TO_MARK, Batch
from shared.readmodels.times import iso, parse

TUTOR_HISTORY_DAYS = 30
"""A tutor document keeps sessions that ended less than this many days before the latest
session event applied to it (not the wall clock, so rebuilds are identical)."""

_STILL_TO_RUN = frozenset({ev.SessionStatus.SCHEDULED, ev.SessionStatus.LIVE})


@functools.lru_cache(maxsize=1024)
def _horizon(as_of: str) -> str:
    """The oldest end of a finished session the tutor's document keeps, at ``as_of`` (the
    same for every event of a batch that does not move ``as_of``: worked out once)."""
    return iso(parse(as_of) - timedelta(days=TUTOR_HISTORY_DAYS))


def tutor_doc(docs: Batch, centre_id: str, tutor_id: str) -> Tutor:
    """The tutor's document, blank if there is none yet."""
    tutor = docs.get(TUTOR, tutor_id)
    if tutor is None:
        return Tutor(tutor_id=tutor_id, centre_id=centre_id)
    return trimmed(tutor)


def trimmed(tutor: Tutor) -> Tutor:
    """A document written by an earlier release also held the homework the tutor set until
    it was graded, handed in or not: whatever is not waiting for their mark is left out when
    it is written again, so it becomes what a rebuild writes."""
    if any(h.status is not TO_MARK for h in tutor.homework.values()):
        tutor.homework = {k: h for k, h in tutor.homework.items() if h.status is TO_MARK}
    return tutor


def homework_to_mark(
    docs: Batch, centre_id: str, summary: HomeworkSummary, before: ev.HomeworkStatus | None
) -> None:
    """Keep the tutor's document's entry for one homework: held while it is handed in and
    waits for the tutor's mark (``TO_MARK``), so the document is bounded by the marking to
    do, not by the homework set over the years. ``before`` is the homework's status before
    this event (``None`` when it was assigned): the document is written only when the
    homework enters, changes in or leaves that status, which depends on the homework's own
    events alone, so the versions are the same in whatever order aggregates are applied.
    Homework handed in long after it was set is filed from its own document then."""
    if summary.status is not TO_MARK and before is not TO_MARK:
        return
    tutor = tutor_doc(docs, centre_id, summary.teacher_id)
    if summary.status is TO_MARK:
        tutor.homework[summary.homework_id] = summary
    else:
        tutor.homework.pop(summary.homework_id, None)
    docs.put(TUTOR, summary.teacher_id, centre_id, tutor)


def refresh_tutor(docs: Batch, session: Session, at: datetime) -> None:
    """Recompute what the tutor's document holds about this session from the session itself,
    so the tutor document does not depend on the order events of different aggregates arrive.

    It keeps the sessions still to run or running and those that ended less than
    ``TUTOR_HISTORY_DAYS`` before ``as_of``, the latest time of the events that refreshed it
    (``at`` is the time of this one): never the wall clock, so a rebuild is identical, and a
    maximum, so the result is the same in whatever order replicas apply the events. Booking
    far ahead does not move it, so today's finished sessions stay in My Day."""
    sid = session.session_id
    tutor = tutor_doc(docs, session.centre_id, session.tutor_id)
    seats = session.students.values()
    tutor.sessions[sid] = TutorSession(
        session_id=sid,
        title=session.title,
        status=session.status,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        time_zone=session.time_zone,
        mode=session.mode,
        location=session.location,
        students=sorted(i for i, s in session.students.items() if s.enrolled),
    )
    live = session.status is ev.SessionStatus.LIVE
    tutor.open_help = {k: h for k, h in tutor.open_help.items() if h.session_id != sid} | {
        h.help_request_id: h
        for s in seats
        for h in s.help_requests.values()
        if live and h.status in ev.OPEN_HELP_REQUESTS
    }
    tutor.catch_ups = {k: c for k, c in tutor.catch_ups.items() if c.session_id != sid} | {
        c.catch_up_id: TutorCatchUp(
            catch_up_id=c.catch_up_id,
            status=c.status,
            due_at=c.due_at,
            reason=c.reason,
            started_at=c.started_at,
            completed_at=c.completed_at,
            cancelled_at=c.cancelled_at,
            reminded_at=c.reminded_at,
            overdue_at=c.overdue_at,
            student_id=s.student_id,
            session_id=sid,
            session_title=session.title,
        )
        for s in seats
        for c in s.catch_ups.values()
        if c.status in ev.OPEN_CATCH_UPS
    }
    tutor.to_grade = {k: w for k, w in tutor.to_grade.items() if w.session_id != sid} | {
        w.work_id: ToGrade(
            work_id=w.work_id,
            title=w.title,
            submitted_at=w.submitted_at,
            max_score=w.max_score,
            student_id=s.student_id,
            session_id=sid,
            session_title=session.title,
            paper_upload_id=w.paper_upload_id,
        )
        for s in seats
        for w in work_of(s).values()
        if w.status is ev.WorkStatus.SUBMITTED
    }
    tutor.as_of = max(tutor.as_of or "", iso(at))
    horizon = _horizon(tutor.as_of)
    tutor.sessions = {
        key: x
        for key, x in tutor.sessions.items()
        if x.ends_at >= horizon or x.status in _STILL_TO_RUN
    }
    docs.put(TUTOR, session.tutor_id, session.centre_id, tutor)
