"""The Control Center: the live picture of one session, most urgent students first.

Everyone who follows a session sees the same picture but for the rows: a tutor or a
supervisor every student's, a student their own, a parent their children's. Within a
:func:`shaped_together` block (the live gateway's round of reads) the picture of one session
at one instant is worked out once, and each follower's view is made of it and of their rows
alone. Views made so share their parts: nothing may change one once it is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

import msgspec

from shared.events import (
    HELP_PRIORITY_RANK,
    OPEN_HELP_REQUESTS,
    UNFINISHED_WORK,
    SessionStatus,
    WorkStatus,
)
from shared.readmodels.documents import JsonObject, Seat, Session, Work, as_json, work_of
from shared.readmodels.patches import merge_patch
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
    students = (
        [row for _, row in rows]
        if only_students is None
        else [row for student_id, row in rows if student_id in only_students]
    )
    waiting = to_grade = needing = on_paper = 0
    for row in students:
        waiting += bool(row["openHelpRequest"])
        to_grade += row["workToGrade"]
        needing += row["needsAttention"]
        on_paper += row["paper"]["handedIn"]
    roster = {
        "students": students,
        "openHelpRequests": waiting,
        "workToGrade": to_grade,
        "needingAttention": needing,
        "paperHandedIn": on_paper,
    }
    if together is None:
        return head | roster
    view = SharedView(head)
    view.update(roster)
    view.head = head
    return view


class SharedView(dict[str, Any]):
    """A Control Center made within :func:`shaped_together`: a JSON object like any other, that
    also knows the session's part it was made of (``head``, the same object in every view of
    the same picture), so that :func:`patch_between` works out its difference once."""

    __slots__ = ("head",)
    head: JsonObject


ROSTER: Final = ("students", "openHelpRequests", "workToGrade", "needingAttention", "paperHandedIn")
"""What a view holds beside the session's part, in order: its rows and their counts."""

HeadPatches = dict[tuple[int, int], tuple[JsonObject, JsonObject, JsonObject]]
"""Merge patches between two session parts, by the parts' ids (the parts kept alive beside)."""


def patch_between(before: JsonObject, after: JsonObject, heads: HeadPatches) -> JsonObject:
    """The merge patch from ``before`` to ``after`` (as ``merge_patch``). Between two views
    made together, the patch of their session parts is worked out once per pair of parts in
    ``heads`` and only their rosters are compared: the views of one session's followers in a
    round share both parts, so one comparison of the session serves them all."""
    if not isinstance(before, SharedView) or not isinstance(after, SharedView):
        return cast(JsonObject, merge_patch(before, after))
    old, new = before.head, after.head
    kept = heads.get((id(old), id(new)))
    if kept is None or kept[0] is not old or kept[1] is not new:
        kept = heads[(id(old), id(new))] = (old, new, cast(JsonObject, merge_patch(old, new)))
    patch = dict(kept[2])
    for key in ROSTER:
        value = after[key]
        was = before[key]
        if was is not value and was != value:
            patch[key] = value  # a list or a number: a patch replaces it whole
    return patch


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
    # The session without its seats (each row holds its own): the rest of it, as stored.
    body = as_json(msgspec.structs.replace(session, students={}))
    del body["students"]
    head = body | {"tutorName": names.get(session.tutor_id), "timing": timing}
    return head, [(row["studentId"], row) for row in rows]


@dataclass(eq=False)
class _Together:
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
        self.pictures[id(session)] = (session, names, now, head, rows)
        return head, rows


_TOGETHER: ContextVar[_Together | None] = ContextVar("control_center_together", default=None)


@contextmanager
def shaped_together() -> Iterator[None]:
    """Within the block, Control Centers of the same session document (the same object), names
    and instant share the picture worked out for the first of them (in this thread or task):
    the session's part and every student's row, shared read-only by the views made of them."""
    token = _TOGETHER.set(_Together())
    try:
        yield
    finally:
        _TOGETHER.reset(token)
