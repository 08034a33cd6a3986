"""The Control Center: the live picture of one session, most urgent students first.

Everyone who follows a session sees the same picture but for the rows: a tutor or a
supervisor every student's, a student their own, a parent their children's. Within a
:func:`shaped_together` block (the live gateway's round of reads) the picture of one session
at one instant is worked out once, and each follower's view is made of it and of their rows
alone; with :class:`Shapes` the parts that did not change since the session's last picture are
the very objects of the last one, so a viewer's difference from their last view compares them
by identity. Views are shared read-only: nothing may change one once it is made.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import msgspec

from shared.events import (
    HELP_PRIORITY_RANK,
    OPEN_HELP_REQUESTS,
    UNFINISHED_WORK,
    SessionStatus,
    WorkStatus,
)
from shared.readmodels.documents import JsonObject, Seat, Session, Work, as_json, work_of
from shared.readmodels.times import parse, seconds_between
from shared.readmodels.views.common import Names, help_view, overdue

IDLE_AFTER_SECONDS = 5 * 60
"""A student present but silent this long shows as IDLE."""
ATTENTION_AFTER_SECONDS = 10 * 60
"""A student in a live session whom the tutor has not taught or helped this long (since they
joined, if never) needs attention: nobody is forgotten in a 1:5 session."""


def _activity(seat: Seat, now: datetime) -> str:
    presence = seat.presence
    if presence is None:
        return "NOT_JOINED"
    if not presence.present:
        return "AWAY"
    last_sign = max(presence.last_seen_at, seat.last_activity_at or "")
    return "IDLE" if seconds_between(last_sign, now) >= IDLE_AFTER_SECONDS else "ACTIVE"


def _row(session: Session, seat: Seat, names: Names, now: datetime) -> JsonObject:
    """One student's row: their seat, with what it means now."""
    help_requests = sorted(
        (help_view(h, now) for h in seat.help_requests.values()), key=lambda h: h["raisedAt"]
    )
    activity = _activity(seat, now)
    work = sorted(work_of(seat).values(), key=lambda w: (w.assigned_at, w.work_id))
    unfinished = [w for w in work if w.status in UNFINISHED_WORK]
    teaching = seat.teaching
    teaching_seconds = teaching.teaching_seconds + (
        seconds_between(teaching.since, now) if teaching.since else 0
    )
    attended = seat.last_attended_at
    presence = seat.presence
    joined = (presence.last_joined_at or presence.joined_at) if presence else None
    waiting_since = max(attended or "", joined or "") or None  # time away is not time left alone
    unattended = (
        None
        if session.status is not SessionStatus.LIVE
        or not waiting_since
        or activity not in ("ACTIVE", "IDLE")
        else 0
        if teaching.since
        else seconds_between(waiting_since, now)
    )
    catch_ups = sorted(
        ({**as_json(c), "overdue": overdue(c, now)} for c in seat.catch_ups.values()),
        key=lambda c: c["dueAt"],
    )
    return {
        **as_json(seat),
        "name": names.get(seat.student_id),
        "activity": activity,
        "teaching": {**as_json(teaching), "teachingSeconds": teaching_seconds},
        "sinceAttendedSeconds": seconds_between(attended, now) if attended else None,
        "unattendedSeconds": unattended,
        "needsAttention": unattended is not None and unattended >= ATTENTION_AFTER_SECONDS,
        "helpRequests": help_requests,
        "catchUps": catch_ups,
        "work": [as_json(w) for w in work],
        "currentExercise": as_json(unfinished[-1]) if unfinished else None,
        "workToGrade": sum(1 for w in work if w.status is WorkStatus.SUBMITTED),
        "paper": _paper_handed_in(work),
        "openHelpRequest": next(
            (h for h in help_requests if h["status"] in OPEN_HELP_REQUESTS), None
        ),
    }


def _paper_handed_in(work: list[Work]) -> JsonObject:
    """The student's work of this session handed in on paper: how much, and the latest."""
    on_paper = sorted(
        (w for w in work if w.paper_upload_id and w.submitted_at),
        key=lambda w: (w.submitted_at or "", w.work_id),
    )
    last = on_paper[-1] if on_paper else None
    return {
        "handedIn": len(on_paper),
        "lastAt": last.submitted_at if last else None,
        "lastUploadId": last.paper_upload_id if last else None,
        "lastWorkId": last.work_id if last else None,
    }


def _most_urgent_first(row: JsonObject) -> tuple[Any, ...]:
    """Waiting for help (by priority, escalated to the supervisors first, then the longest
    waiting), then needing attention (the longest unattended), then everyone else by name."""
    help_request = row["openHelpRequest"] or {}
    return (
        not help_request,
        HELP_PRIORITY_RANK.get(help_request.get("priority", ""), 9),
        "escalatedAt" not in help_request,
        help_request.get("raisedAt", ""),
        not row["needsAttention"],
        -(row["unattendedSeconds"] or 0) if row["needsAttention"] else 0,
        row["name"] or "",
        row["studentId"],
    )


def control_center(
    session: Session, names: Names, now: datetime, only_students: set[str] | None = None
) -> JsonObject:
    """The live picture of one session; ``only_students`` limits the roster (students,
    parents)."""
    together = _TOGETHER.get()
    head, rows = (
        _picture(session, names, now) if together is None else together.picture(session, names, now)
    )
    students = [
        row for student_id, row in rows if only_students is None or student_id in only_students
    ]
    return head | {
        "students": students,
        "openHelpRequests": sum(1 for s in students if s["openHelpRequest"]),
        "workToGrade": sum(s["workToGrade"] for s in students),
        "needingAttention": sum(1 for s in students if s["needsAttention"]),
        "paperHandedIn": sum(s["paper"]["handedIn"] for s in students),
    }


Rows = list[tuple[str, JsonObject]]
"""Every listed student's row, most urgent first, by student id."""


def _picture(session: Session, names: Names, now: datetime) -> tuple[JsonObject, Rows]:
    """What every follower of the session sees at ``now`` (all but the roster and its counts),
    and every listed student's row, most urgent first: a roster limited to some students is
    the same order, since the order of two rows depends on those two alone."""
    rows = [
        _row(session, seat, names, now)
        for seat in session.students.values()
        if seat.enrolled or seat.attendance is not None
    ]
    rows.sort(key=_most_urgent_first)
    starts, ends = parse(session.starts_at), parse(session.ends_at)
    timing: JsonObject = {"scheduledMinutes": int((ends - starts).total_seconds() // 60)}
    if session.status is SessionStatus.LIVE and session.started_at:
        timing["elapsedSeconds"] = seconds_between(session.started_at, now)
        timing["remainingSeconds"] = int((ends - now).total_seconds())
    elif session.status is SessionStatus.SCHEDULED:
        timing["startsInSeconds"] = int((starts - now).total_seconds())
    body = as_json(session)
    del body["students"]
    head = body | {"tutorName": names.get(session.tutor_id), "timing": timing}
    return head, [(row["studentId"], row) for row in rows]


SHAPES_KEPT: Final = 20_000
"""Sessions whose last picture :class:`Shapes` keeps (the least recently shaped go first)."""


@dataclass(eq=False)
class Shapes:
    """The last picture shaped of each session, whose unchanged parts (its rows, and the
    lists and objects of the rest) the next picture reuses as they are. Unchanged means the
    same JSON: ``0`` and ``False`` are equal in Python, not on the wire. Thread-safe: rounds
    of reads run in several threads."""

    kept: int = SHAPES_KEPT
    _last: dict[str, dict[str, _Part]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reuse(self, session_id: str, head: JsonObject, rows: Rows) -> tuple[JsonObject, Rows]:
        """``head`` and ``rows``, each part the same JSON as the last picture's being that one."""
        with self._lock:
            last = self._last.pop(session_id, {})
        parts: dict[str, _Part] = {}
        shared_head = dict(head)
        for key, value in head.items():
            if isinstance(value, dict | list):
                part = parts["." + key] = _reused(last.get("." + key), value)
                shared_head[key] = part.value
        shared_rows: Rows = []
        for student_id, row in rows:
            part = parts[student_id] = _reused(last.get(student_id), row)
            shared_rows.append((student_id, part.value))
        with self._lock:
            self._last[session_id] = parts
            while len(self._last) > self.kept:
                del self._last[next(iter(self._last))]
        return shared_head, shared_rows

    def __len__(self) -> int:
        return len(self._last)


_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class _Part:
    value: Any
    _json: bytes | None = None

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = _encode(self.value)
        return self._json


def _reused(last: _Part | None, value: Any) -> _Part:
    """The last part if ``value`` is the same JSON (compared as values first: most that are
    equal are the same JSON, and most that differ are told apart without encoding)."""
    if last is not None and last.value == value:
        new = _Part(value)
        if new.json == last.json:
            return last
        return new
    return _Part(value)


@dataclass(eq=False)
class _Together:
    shapes: Shapes | None
    pictures: dict[int, tuple[Session, Names, datetime, JsonObject, Rows]] = field(
        default_factory=dict
    )

    def picture(self, session: Session, names: Names, now: datetime) -> tuple[JsonObject, Rows]:
        kept = self.pictures.get(id(session))
        if kept is not None:
            # The very document (kept alive here, so its id is not another's), the same names.
            same, known, at, head, rows = kept
            if same is session and at == now and (known is names or known == names):
                return head, rows
        head, rows = _picture(session, names, now)
        if self.shapes is not None:
            head, rows = self.shapes.reuse(session.session_id, head, rows)
        self.pictures[id(session)] = (session, names, now, head, rows)
        return head, rows


_TOGETHER: ContextVar[_Together | None] = ContextVar("control_center_together", default=None)


@contextmanager
def shaped_together(shapes: Shapes | None = None) -> Iterator[None]:
    """Within the block, Control Centers of the same session document (the same object), names
    and instant share the picture worked out for the first of them (in this thread or task);
    with ``shapes``, parts unchanged since the session's last picture are reused too."""
    token = _TOGETHER.set(_Together(shapes))
    try:
        yield
    finally:
        _TOGETHER.reset(token)
