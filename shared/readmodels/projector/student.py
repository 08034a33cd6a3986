"""The ``student`` document and the student's ``student_sessions`` months: what they hold about
the student's sessions (recomputed from the session documents), the notes about them, their
academic profile and content assignments."""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

import msgspec

from shared import events as ev
from shared.readmodels.documents import (
    RECENT_WORK,
    STUDENT,
    STUDENT_ALERTS,
    STUDENT_RECENT_SESSIONS,
    STUDENT_SESSIONS,
    ContentAssignment,
    LevelChange,
    MonthTotals,
    Note,
    Session,
    SessionTotals,
    Student,
    StudentHistory,
    StudentSession,
    Subject,
    Work,
    month_of,
    pinned,
    student_history_key,
    upcoming,
    work_of,
)
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso
from shared.readmodels.views.risk import alert_inputs

RISK_MARKS = 12
"""How many of the latest marked sessions and scored exercises ``student_risk`` keeps."""


def _percent_of(work: Work) -> float | None:
    if work.status not in RISK_SCORED or work.score is None or work.max_score <= 0:
        return None
    return 100.0 * work.score / work.max_score


RISK_SCORED = frozenset({ev.WorkStatus.AUTO_GRADED, ev.WorkStatus.GRADED})
_ATTENDED = frozenset({ev.AttendanceStatus.PRESENT, ev.AttendanceStatus.LATE})
_by_start_key = operator.attrgetter("starts_at", "session_id")


def _scored(session: StudentSession) -> list[tuple[str, str]]:
    """``(when it was scored, work id)`` of the session's scored exercise work."""
    return [
        (w.graded_at or w.submitted_at or w.assigned_at, w.work_id)
        for w in session.work.values()
        if _percent_of(w) is not None
    ]


def risk_inputs(student: Student) -> Student:
    """What the risk score and the absence alerts read of a student (their latest
    ``RISK_MARKS`` marked sessions, the latest attended and the first marked one the document
    holds, the sessions of their latest ``RISK_MARKS`` scored exercises with those alone, open
    homework, the totals over every session), without the rest: what My Day reads for each
    student it shows."""
    every = student.sessions
    marked = [s for s in every.values() if s.attendance]
    keep = {s.session_id for s in marked}
    if len(marked) > RISK_MARKS:
        marked.sort(key=_by_start_key, reverse=True)
        keep = {s.session_id for s in marked[:RISK_MARKS]}
        attended = next((s for s in marked if s.attendance in _ATTENDED), None)
        keep.update([s.session_id for s in ([attended] if attended else []) + marked[-1:]])
    scored = _latest([k for s in every.values() if s.work for k in _latest_scored(s)], RISK_MARKS)
    works: dict[str, set[str]] = {}
    for _, work_id, session_id in scored:
        works.setdefault(session_id, set()).add(work_id)
    sessions = {
        key: _risk_copy(s, works.get(key, ()))
        for key, s in every.items()
        if key in keep or key in works
    }
    return Student(
        student_id=student.student_id,
        centre_id=student.centre_id,
        sessions=sessions,
        homework={k: h for k, h in student.homework.items() if h.status in ev.OPEN_HOMEWORK},
        overdue_homework=student.overdue_homework,
        totals=student.totals,
    )


def put_student(docs: Batch, student: Student) -> None:
    """Write the student's document, and what My Day reads of it (``student_alerts``: the
    inputs of the absence and risk alerts, worked out from :func:`risk_inputs` once the batch
    is done with the student: every change of the document is put here)."""
    docs.put(STUDENT, student.student_id, student.centre_id, student)
    docs.put_derived(
        STUDENT_ALERTS,
        student.student_id,
        student.centre_id,
        lambda: alert_inputs(risk_inputs(student)),
    )


def student_doc(docs: Batch, centre_id: str, student_id: str) -> Student:
    """The student's document, blank if there is none yet."""
    return docs.get(STUDENT, student_id) or Student(student_id=student_id, centre_id=centre_id)


def without_answers(work: Work) -> Work:
    """Exercise work as the student's own document holds it."""
    return msgspec.structs.replace(work, answers=msgspec.UNSET)


# --- the student's sessions, by month ----------------------------------------------------------
#
# Every session of a student lives in one ``student_sessions`` document, of the month it is
# placed in, for good: each change of the session rewrites its entry there (never anywhere
# else), so which documents an event touches, and their versions, do not depend on the order
# in which events of different aggregates are applied. The ``student`` document keeps each
# month's totals, recomputed from the month, and a window on the months recomputed from them:
# both functions of the months' contents alone. A reader compares nothing else.


def refresh_student(docs: Batch, session: Session, student_id: str) -> None:
    """What the student's documents hold about this session, recomputed from the session."""
    row = session.students.get(student_id)
    if row is None:
        return
    student = student_doc(docs, session.centre_id, student_id)
    before: dict[str, StudentSession] | None = student.sessions
    if not isinstance(student.months, dict):
        before = None if student.sessions else {}
        _place_earlier(docs, student)
    record = StudentSession(
        session_id=session.session_id,
        title=session.title,
        status=session.status,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        enrolled=row.enrolled,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        attendance=row.attendance,
        attendance_notes=row.attendance_notes,
        # Copies: the session's own go on changing in place with its later events.
        catch_ups={k: msgspec.structs.replace(c) for k, c in row.catch_ups.items()},
        help_requests={k: msgspec.structs.replace(h) for k, h in row.help_requests.items()},
        work={k: without_answers(w) for k, w in work_of(row).items()},
    )
    month = _place(student, record)
    history = _history(docs, student, month)
    was = history.sessions.get(record.session_id)
    history.sessions[record.session_id] = record
    docs.put(STUDENT_SESSIONS, student_history_key(student_id, month), student.centre_id, history)
    if before is not None and was == record:  # what changed is not shown here (presence)
        put_student(docs, student)
        return
    facts = _facts_of(record)
    was_facts = _facts_of(was) if was is not None else None
    months = dict(student.months) if isinstance(student.months, dict) else {}
    totals = months.get(month)
    after = None
    if totals is not None and before is not None and len(history.sessions) > _RECOUNT:
        shared = _share_of(was) if was is not None else None
        after = _month_after(totals, shared, _share_of(record))
    months[month] = after or month_totals(history.sessions.values())
    sums = None
    if before is not None and isinstance(student.totals, SessionTotals) and len(months) > _RECOUNT:
        sums = _sums_after(student.totals, totals, months[month])
    student.months = months
    student.totals = sums or _totals(months.values())
    if before is not None and was is not None and was_facts == facts:
        # The window is chosen by the facts alone, and none changed: the same sessions.
        student.sessions = {k: record if k == record.session_id else s for k, s in before.items()}
    else:
        student.sessions = _window(docs, student, history, before)
    put_student(docs, student)


def _place_earlier(docs: Batch, student: Student) -> None:
    """A document of an earlier release holds every session of the student: place each in its
    month (a rebuild gives the same documents, with versions counted from the start)."""
    months: dict[str, MonthTotals] = {}
    for session in student.sessions.values():
        month = _place(student, session)
        history = _history(docs, student, month)
        history.sessions.setdefault(session.session_id, session)
        docs.put(
            STUDENT_SESSIONS,
            student_history_key(student.student_id, month),
            student.centre_id,
            history,
        )
        months[month] = month_totals(history.sessions.values())
    student.months = months


def _place(student: Student, session: StudentSession) -> str:
    """The month the session lives in, remembered while its start may still move and, once
    it moved, for good. A session is first seen at its student's enrolment (the events of
    their seat wait for it), an event of the session itself, so its start then is that of the
    session's own events before it, whatever else replicas applied; a reschedule (of a
    SCHEDULED session only) then leaves the session where it is."""
    placement = student.placement if isinstance(student.placement, dict) else {}
    own = month_of(session.starts_at)
    month = placement.get(session.session_id, own)
    if session.status is ev.SessionStatus.SCHEDULED or month != own:
        if placement.get(session.session_id) != month:
            placement = {**placement, session.session_id: month}
    elif session.session_id in placement:
        placement = {k: m for k, m in placement.items() if k != session.session_id}
    student.placement = placement or msgspec.UNSET
    return month


def _history(docs: Batch, student: Student, month: str) -> StudentHistory:
    key = student_history_key(student.student_id, month)
    return docs.get(STUDENT_SESSIONS, key) or StudentHistory(
        student_id=student.student_id, centre_id=student.centre_id, month=month
    )


_RECOUNT = 3
"""Up to how many sessions a month's totals are counted again from its sessions rather than
changed by the one session that changed (which reads that session as it was, too)."""


class _Share(NamedTuple):
    """What one session adds to its month's totals (:func:`month_totals`)."""

    upcoming: int
    open: int
    over: str | None
    """Its start, if it is over with nothing open (``newest_over``)."""
    scored: int
    newest_scored: str | None
    newest_done: str | None
    work_xp: int
    marked: str | None
    """Its start, if it has an attendance mark."""
    attendance: str | None
    attended: str | None
    """Its start, if the student attended (PRESENT or LATE)."""


def _share(session: StudentSession, facts: _Facts) -> _Share:
    scored, done = facts.scored, facts.done
    marked = session.starts_at if session.attendance is not None else None
    return _Share(
        upcoming=int(upcoming(session)),
        open=int(pinned(session)),
        over=session.starts_at if facts.listing else None,
        scored=len(scored),
        newest_scored=max(w for w, _ in scored) if scored else None,
        newest_done=max(w for w, _ in done) if done else None,
        work_xp=sum(w.xp_awarded for w in session.work.values()),
        marked=marked,
        attendance=session.attendance.value if session.attendance is not None else None,
        attended=marked if session.attendance in _ATTENDED else None,
    )


def _later(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


_NEWEST = (
    ("newest_over", "over"),
    ("newest_scored", "newest_scored"),
    ("newest_done_work", "newest_done"),
    ("newest_marked", "marked"),
    ("last_attended_at", "attended"),
)
"""The month's latest of each (its field, the share's)."""


def _add(totals: MonthTotals, share: _Share) -> None:
    """Count one more session in ``totals`` (attendance left unsorted)."""
    totals.sessions += 1
    totals.upcoming += share.upcoming
    totals.open += share.open
    if share.over is not None:
        totals.newest_over = _later(totals.newest_over, share.over)
    if share.scored:
        totals.scored += share.scored
        totals.newest_scored = _later(totals.newest_scored, share.newest_scored)
    if share.newest_done is not None:
        totals.newest_done_work = _later(totals.newest_done_work, share.newest_done)
    totals.work_xp += share.work_xp
    if share.attendance is not None:
        totals.marked += 1
        totals.newest_marked = _later(totals.newest_marked, share.marked)
        totals.attendance[share.attendance] = totals.attendance.get(share.attendance, 0) + 1
        if share.attended is not None:
            totals.last_attended_at = _later(totals.last_attended_at, share.attended)
        totals.first_marked_at = _earlier(totals.first_marked_at, share.marked)


def month_totals(sessions: Iterable[StudentSession]) -> MonthTotals:
    """The totals of one month's sessions."""
    totals = MonthTotals()
    for s in sessions:
        _add(totals, _share_of(s))
    totals.attendance = dict(sorted(totals.attendance.items()))
    return totals


def _may_have_left(
    was: str | None, kept: str | None, now: str | None, *, latest: bool = True
) -> bool:
    """Whether the latest (or earliest) of something may have left with what was ``was`` and
    is now ``now``: it was the one ``kept``, and ``now`` does not reach it. Then only the
    others can tell what it is now."""
    if was is None or was != kept:
        return False  # another one holds what is kept
    return now is None or (now < was if latest else now > was)


def _month_after(totals: MonthTotals, was: _Share | None, now: _Share) -> MonthTotals | None:
    """The month's ``totals`` once a session's share went from ``was`` (``None``: it was not
    in the month) to ``now``, without reading the month's other sessions; ``None`` if a
    latest or earliest of them may have left with ``was`` (then only they can tell)."""
    if was == now:
        return totals
    after = msgspec.structs.replace(totals, attendance=dict(totals.attendance))
    if was is not None:
        for field, of in _NEWEST:
            if _may_have_left(getattr(was, of), getattr(after, field), getattr(now, of)):
                return None
        if _may_have_left(was.marked, after.first_marked_at, now.marked, latest=False):
            return None
        after.sessions -= 1
        after.upcoming -= was.upcoming
        after.open -= was.open
        after.scored -= was.scored
        after.work_xp -= was.work_xp
        if was.attendance is not None:
            after.marked -= 1
            left = after.attendance[was.attendance] - 1
            if left:
                after.attendance[was.attendance] = left
            else:
                del after.attendance[was.attendance]
    _add(after, now)
    after.attendance = dict(sorted(after.attendance.items()))
    return after


def _totals(months: Iterable[MonthTotals]) -> SessionTotals:
    totals = SessionTotals()
    for month in months:
        totals.count += month.sessions
        totals.work_xp += month.work_xp
        for status, n in month.attendance.items():
            totals.attendance[status] = totals.attendance.get(status, 0) + n
        if month.last_attended_at is not None:
            totals.last_attended_at = max(totals.last_attended_at or "", month.last_attended_at)
        if month.first_marked_at is not None:
            totals.first_marked_at = min(
                totals.first_marked_at or month.first_marked_at, month.first_marked_at
            )
    totals.attendance = dict(sorted(totals.attendance.items()))
    return totals


def _sums_after(
    sums: SessionTotals, was: MonthTotals | None, now: MonthTotals
) -> SessionTotals | None:
    """The sums over every month once one month's totals went from ``was`` (``None``: a new
    month) to ``now``; ``None`` if the latest attended or earliest marked session may have left
    with ``was`` (then only the other months can tell)."""
    if was is now:
        return sums
    attendance = dict(sums.attendance)
    count, work_xp = sums.count + now.sessions, sums.work_xp + now.work_xp
    if was is not None:
        if _may_have_left(was.last_attended_at, sums.last_attended_at, now.last_attended_at):
            return None
        if _may_have_left(
            was.first_marked_at, sums.first_marked_at, now.first_marked_at, latest=False
        ):
            return None
        count, work_xp = count - was.sessions, work_xp - was.work_xp
        for status, n in was.attendance.items():
            attendance[status] -= n
    for status, n in now.attendance.items():
        attendance[status] = attendance.get(status, 0) + n
    return SessionTotals(
        count=count,
        attendance={status: n for status, n in sorted(attendance.items()) if n},
        work_xp=work_xp,
        last_attended_at=_later(sums.last_attended_at, now.last_attended_at),
        first_marked_at=_earlier(sums.first_marked_at, now.first_marked_at),
    )


_Key = tuple[str, str]
_T = TypeVar("_T", bound=tuple[Any, ...])


class _Facts(NamedTuple):
    """What the window is chosen by, of one session: the keys of each thing the window keeps
    the latest of (in the order of :data:`_LATEST`)."""

    listing: Sequence[_Key]
    """``(start, id)`` if the overview lists it only among the latest (:func:`listed`): it is
    over with nothing open."""
    marked: Sequence[_Key]
    scored: Sequence[_Key]
    done: Sequence[_Key]
    """``(assigned, work id)`` of its work handed in or marked."""


_NO_WORK: list[_Key] = []


def _facts(session: StudentSession) -> _Facts:
    start = ((session.starts_at, session.session_id),)
    work = session.work
    return _Facts(
        listing=() if upcoming(session) or pinned(session) else start,
        marked=start if session.attendance else (),
        scored=_scored(session) if work else _NO_WORK,
        done=[
            (w.assigned_at, w.work_id) for w in work.values() if w.status not in ev.UNFINISHED_WORK
        ]
        if work
        else _NO_WORK,
    )


_LATEST: tuple[tuple[Callable[[MonthTotals], str | None], int], ...] = (
    (lambda t: t.newest_over, STUDENT_RECENT_SESSIONS),
    (lambda t: t.newest_marked, RISK_MARKS),
    (lambda t: t.newest_scored, RISK_MARKS),
    (lambda t: t.newest_done_work, RECENT_WORK),
)
"""What the window keeps the latest of (as :class:`_Facts`): each month's bound on its keys
(their newest time), and how many."""


class _Seen:
    """What was worked out of one session entry (which is never changed once made: every
    change of the session makes a new one)."""

    __slots__ = ("facts", "risk", "scored", "session", "share")

    def __init__(self, session: StudentSession) -> None:
        self.session = session
        """Held, so that no other entry takes its ``id`` while this is kept."""
        self.facts = _facts(session)
        self.share: _Share | None = None
        self.scored: list[tuple[str, str, str]] | None = None
        """``(when, work id, session id)`` of its latest ``RISK_MARKS`` scored work."""
        self.risk: tuple[tuple[str, ...], StudentSession] | None = None
        """The entry as ``student_risk`` keeps it, with only the work of these ids."""


_SEEN: dict[int, _Seen] = {}
_SEEN_AT_MOST = 32_768
"""Entries whose facts are kept between refreshes (a batch, or a rebuild, refreshes the same
student's window many times over); past this many, all are forgotten and worked out anew. The
windows of a year's thousand students hold about 25,000 entries: at 8,192 a rebuild of that
year kept forgetting them (a sixteenth of its CPU per event went to working them out again)."""


def _seen(session: StudentSession) -> _Seen:
    found = _SEEN.get(id(session))
    if found is None or found.session is not session:
        if len(_SEEN) >= _SEEN_AT_MOST:
            _SEEN.clear()
        found = _SEEN[id(session)] = _Seen(session)
    return found


def _facts_of(session: StudentSession) -> _Facts:
    found = _SEEN.get(id(session))
    if found is not None and found.session is session:
        return found.facts
    return _seen(session).facts


def _share_of(session: StudentSession) -> _Share:
    seen = _seen(session)
    if seen.share is None:
        seen.share = _share(session, seen.facts)
    return seen.share


def _latest_scored(session: StudentSession) -> list[tuple[str, str, str]]:
    seen = _seen(session)
    if seen.scored is None:
        seen.scored = heapq.nlargest(
            RISK_MARKS, ((when, w, session.session_id) for when, w in seen.facts.scored)
        )
    return seen.scored


def _risk_copy(session: StudentSession, works: Iterable[str]) -> StudentSession:
    """The entry as ``student_risk`` keeps it: no catch-ups or help requests, and of its work
    only ``works``."""
    seen = _seen(session)
    ids = tuple(sorted(works))
    if seen.risk is None or seen.risk[0] != ids:
        work = session.work
        copy = msgspec.structs.replace(
            session, catch_ups={}, help_requests={}, work={w: work[w] for w in ids}
        )
        seen.risk = (ids, copy)
    return seen.risk[1]


def _window(
    docs: Batch,
    student: Student,
    changed: StudentHistory,
    before: dict[str, StudentSession] | None,
) -> dict[str, StudentSession]:
    """What the student's document keeps of their sessions (``Student.sessions``): what the
    overview lists, the sessions of its latest work handed in or marked, and what the risk
    score reads, exactly as worked out from every session. It is worked out from the window
    ``before`` the ``changed`` month changed where that suffices, else from the months that
    can hold it (:func:`_window_read`)."""
    if before is not None:
        window = _window_from(student, changed, before)
        if window is not None:
            return window
    return _window_read(docs, student)


def _kept(
    every: list[StudentSession], of_every: list[_Facts] | None = None
) -> dict[str, StudentSession]:
    """Of ``every`` session (sorted by start) that can be in the window, those that are: as
    :func:`listed`, and the latest of the rest of :data:`_LATEST` (``of_every``: their facts,
    if worked out already)."""
    facts = list(zip(every, of_every or [_facts_of(s) for s in every], strict=True))
    over = [s.session_id for s, f in facts if f.listing]
    keep = {s.session_id for s, f in facts if not f.listing}
    keep.update(over[-STUDENT_RECENT_SESSIONS:])
    keep.update([s.session_id for s, f in facts if f.marked][-RISK_MARKS:])
    for field, wanted in ((2, RISK_MARKS), (3, RECENT_WORK)):
        latest = _latest([(k, s.session_id) for s, f in facts for k in f[field]], wanted)
        keep.update(session_id for _, session_id in latest)
    return {s.session_id: s for s, _ in facts if s.session_id in keep}


def _latest(keys: list[_T], n: int) -> list[_T]:
    """The latest ``n`` of ``keys``, in no particular order."""
    return heapq.nlargest(n, keys) if len(keys) > n else keys


def _nth_latest(keys: list[_Key], n: int) -> _Key:
    """The ``n``-th largest of ``keys`` (there are at least ``n``)."""
    return heapq.nlargest(n, keys)[-1] if len(keys) > 4 * n else sorted(keys)[-n]


def _by_start(sessions: Iterable[StudentSession]) -> list[StudentSession]:
    return sorted(sessions, key=_by_start_key)


def _window_from(
    student: Student, changed: StudentHistory, before: dict[str, StudentSession]
) -> dict[str, StudentSession] | None:
    """The window from the one ``before`` (exact for the months that did not change) and the
    ``changed`` month; ``None`` if a session of another month may now belong in it. What the
    window held of a month that did not change is every session of it still to come, running
    or with something open, and every one of its latest (listed, marked, scored, handed in)
    that was among the latest of all; the others of that month come after the window's last of
    each, so if the new latest of each still reach that far, none of them can be among them."""
    placement = student.placement if isinstance(student.placement, dict) else {}
    candidates = _by_start(
        [
            *(
                s
                for s in before.values()
                if s.session_id not in changed.sessions
                and placement.get(s.session_id, month_of(s.starts_at)) != changed.month
            ),
            *changed.sessions.values(),
        ]
    )
    was_facts = [_facts_of(s) for s in before.values()]
    now_facts = [_facts_of(s) for s in candidates]
    for field, (_, wanted) in enumerate(_LATEST):
        was = [k for f in was_facts for k in f[field]]
        if len(was) < wanted:
            continue  # the window held every one there was
        now = [k for f in now_facts for k in f[field]]
        if len(now) < wanted or _nth_latest(now, wanted) < _nth_latest(was, wanted):
            return None
    return _kept(candidates, now_facts)


def _window_read(docs: Batch, student: Student) -> dict[str, StudentSession]:
    """The window from the student's months: every month with a session still to come,
    running or with something open, and for each of :data:`_LATEST` the months, the one with
    the newest bound first, until no other can hold one of the latest."""
    months = student.months if isinstance(student.months, dict) else {}
    read: dict[str, StudentHistory] = {}

    def sessions_of(month: str) -> Iterable[StudentSession]:
        if month not in read:
            read[month] = _history(docs, student, month)
        return read[month].sessions.values()

    for month, totals in months.items():
        if totals.upcoming or totals.open:
            sessions_of(month)
    for field, (bound, wanted) in enumerate(_LATEST):
        found: list[_Key] = []
        for newest, month in sorted(
            ((b, m) for m, t in months.items() if (b := bound(t)) is not None), reverse=True
        ):
            if len(found) >= wanted and newest < found[-1][0]:
                break
            found = heapq.nlargest(
                wanted, [*found, *(k for s in sessions_of(month) for k in _facts_of(s)[field])]
            )
    return _kept(_by_start(s for m in read.values() for s in m.sessions.values()))


# --- notes about the student -----------------------------------------------------------------


@projects(ev.TutorNoteWritten)
def note_written(docs: Batch, e: ev.TutorNoteWritten) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    student.notes[str(e.aggregate_id)] = Note(
        note_id=str(e.aggregate_id),
        author_id=str(e.actor_id),
        visibility=e.visibility,
        content=e.content,
        session_id=str(e.session_id) if e.session_id else None,
        written_at=iso(e.occurred_at),
    )
    put_student(docs, student)


@projects(ev.TutorNoteEdited, ev.TutorNoteRedacted)
def note_changed(docs: Batch, e: ev.TutorNoteEdited | ev.TutorNoteRedacted) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    note = student.notes[str(e.aggregate_id)]  # written before: same aggregate, in order
    if isinstance(e, ev.TutorNoteEdited):
        note.content, note.visibility, note.edited_at = e.content, e.visibility, iso(e.occurred_at)
    else:
        note.content, note.redacted, note.redacted_at = None, True, iso(e.occurred_at)
    put_student(docs, student)


# --- the academic profile --------------------------------------------------------------------


def _level_change(
    e: ev.Event, previous: int | None, new: int, change_type: ev.LevelChangeType, reason: str | None
) -> LevelChange:
    return LevelChange(
        at=iso(e.occurred_at),
        previous_level=previous,
        new_level=new,
        change_type=change_type,
        reason=reason,
        changed_by=str(e.actor_id),
    )


@projects(ev.SubjectAssessed)
def subject_assessed(docs: Batch, e: ev.SubjectAssessed) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    earlier = student.subjects.get(e.course_id)
    assessment = _level_change(
        e, e.previous_working_level, e.working_level, ev.LevelChangeType.ASSESSMENT_RESULT, e.notes
    )
    assessment.school_grade = e.school_grade
    student.subjects[e.course_id] = Subject(
        course_id=e.course_id,
        school_grade=e.school_grade,
        working_level=e.working_level,
        last_assessed_at=iso(e.occurred_at),
        assessed_by=str(e.actor_id),
        assessment_notes=e.notes,
        history=[*(earlier.history if earlier else []), assessment],
    )
    put_student(docs, student)


@projects(ev.WorkingLevelChanged)
def working_level_changed(docs: Batch, e: ev.WorkingLevelChanged) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    subject = student.subjects[e.course_id]  # assessed before: same aggregate, in order
    subject.working_level = e.new_level
    subject.history.append(_level_change(e, e.previous_level, e.new_level, e.change_type, e.reason))
    put_student(docs, student)


@projects(ev.ContentAssigned)
def content_assigned(docs: Batch, e: ev.ContentAssigned) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    assignments = student.content_assignments
    assignment_id = str(e.assignment_id)
    if e.replaces is not None:
        replaced = assignments[str(e.replaces)]
        replaced.status = ev.ContentAssignmentStatus.SUPERSEDED
        replaced.ended_at, replaced.superseded_by = iso(e.occurred_at), assignment_id
    assignments[assignment_id] = ContentAssignment(
        assignment_id=assignment_id,
        course_id=e.course_id,
        lesson_id=e.lesson_id,
        exercise_id=e.exercise_id,
        reason=e.reason,
        session_id=str(e.session_id) if e.session_id else None,
        assigned_by=str(e.actor_id),
        assigned_at=iso(e.occurred_at),
        status=ev.ContentAssignmentStatus.ACTIVE,
        replaces=str(e.replaces) if e.replaces else None,
    )
    put_student(docs, student)


@projects(ev.ContentAssignmentWithdrawn)
def content_assignment_withdrawn(docs: Batch, e: ev.ContentAssignmentWithdrawn) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    assignment = student.content_assignments[str(e.assignment_id)]
    assignment.status = ev.ContentAssignmentStatus.WITHDRAWN
    assignment.ended_at, assignment.withdrawn_by = iso(e.occurred_at), str(e.actor_id)
    assignment.withdraw_reason = e.reason
    put_student(docs, student)
