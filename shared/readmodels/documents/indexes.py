"""Indexes over a centre's history: small documents the centre-wide reports read instead of
every session or catch-up document the centre ever had.

- ``help_requests``: one tutor's help requests raised in one month (UTC), keyed
  ``<centre>:<tutor>:<YYYY-MM>``, each as the few facts its figures count
  (:class:`HelpFacts`, worked out once by the projection); ``help_index``, one per centre,
  lists each tutor's months. The help-request analytics of a period read the months it
  touches.
- ``open_catch_ups``: one per centre, its catch-ups still open (with their session's tutor)
  and how many finished ones there are, by due month, status, tutor and student;
  ``closed_catch_ups``: the finished ones due in one month, keyed ``<centre>:<YYYY-MM>``. The
  catch-up list reads the open ones and, past them, the months it pages through.

Each is shaped by the same events as the documents it indexes, so a rebuild produces it.
"""

from __future__ import annotations

import msgspec

from shared.events import HelpPriority, HelpRequestStatus
from shared.readmodels.documents.base import Document, Instant, Record
from shared.readmodels.documents.classes import CatchUp
from shared.readmodels.documents.sessions import HelpRequest
from shared.readmodels.times import iso, parse


def month_of(instant: str) -> str:
    """``YYYY-MM`` of a document's time (ISO 8601 in UTC)."""
    return instant[:7]


class HelpFacts(msgspec.Struct, array_like=True, gc=False):
    """What the analytics count of a help request, stored as a JSON array: when it was raised,
    its priority and status, the seconds to the first response (acknowledged or started) and
    to resolution, whether it breached its SLA once closed (resolved, withdrawn or closed with
    its session after its due time) and, while it is not closed, its due time (it breaches by
    ``now`` once ``now`` is past it). Times are as :func:`~shared.readmodels.times.iso` writes
    them, so the analytics compare them as strings and parse none."""

    raised_at: Instant
    priority: HelpPriority
    status: HelpRequestStatus
    response: float | None
    resolution: float | None
    breached: bool
    open_until: Instant | None


def _seconds(start: str, end: str) -> float:
    return (parse(end) - parse(start)).total_seconds()


def help_facts(request: HelpRequest) -> HelpFacts:
    """The facts of ``request`` as its session shows it."""
    answered = [
        at for at in (request.acknowledged_at, request.started_at) if isinstance(at, str) and at
    ]
    closed = request.resolved_at or request.cancelled_at or request.closed_at
    return HelpFacts(
        raised_at=request.raised_at,
        priority=request.priority,
        status=request.status,
        response=_seconds(request.raised_at, min(answered)) if answered else None,
        resolution=_seconds(request.raised_at, request.resolved_at)
        if request.resolved_at
        else None,
        breached=bool(closed) and parse(str(closed)) > parse(request.sla_due_at),
        open_until=None if closed else iso(parse(request.sla_due_at)),
    )


class HelpRequestsOfMonth(Document, kw_only=True):
    """A tutor's help requests raised in one month: the facts of each, by id.

    ``requests`` is what an earlier release kept instead (each request as the session showed
    it); the analytics still count those not among ``facts``, and the projection turns them
    into facts when it next writes the month."""

    centre_id: str
    facts: dict[str, HelpFacts] = msgspec.field(default_factory=dict)
    month: str
    requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    tutor_id: str


class HelpIndex(Document, kw_only=True):
    """Per tutor of the centre, the months (sorted) in which their students raised help."""

    centre_id: str
    months: dict[str, list[str]] = msgspec.field(default_factory=dict)


def help_month_key(centre_id: str, tutor_id: str, month: str) -> str:
    return f"{centre_id}:{tutor_id}:{month}"


class CatchUpEntry(Record, kw_only=True):
    """A catch-up as the catch-up list pages it: the catch-up document, and its session's tutor
    (which never changes), title and start (kept up to date when the session is moved)."""

    catch_up: CatchUp
    session_starts_at: Instant
    session_title: str
    tutor_id: str


class OpenCatchUpsSummary(Document, kw_only=True):
    """:class:`OpenCatchUps` without the counts per student: the catch-up list reads the index
    so when it is not filtered by student (a store of an earlier release still holds the
    counts per student in the centre's own document: they are skipped, not decoded)."""

    centre_id: str
    closed_by_month: dict[str, int] = msgspec.field(default_factory=dict)
    """Finished catch-ups by the month they were due: where ``closed_catch_ups`` has some."""
    closed_by_status: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_tutor: dict[str, int] = msgspec.field(default_factory=dict)
    open: dict[str, CatchUpEntry] = msgspec.field(default_factory=dict)


class OpenCatchUps(Document, kw_only=True):
    """A centre's open catch-ups, and counts of its finished ones by month, status and tutor,
    under the centre's id. The counts per student (``closed_by_student``, one for every student
    who ever finished a catch-up) are kept apart, in the document of this kind under
    ``catch_ups_by_student_key`` (:mod:`shared.readmodels.projector.indexes`), which holds
    nothing else, so that the centre's document does not grow with its past; a store of an
    earlier release holds them in the centre's document until its next catch-up event moves
    them. Not a subclass of :class:`OpenCatchUpsSummary`: a subclass's fields come after its
    base's, and every document's fields are declared in the sorted order of their JSON names
    (:mod:`.base`)."""

    centre_id: str
    closed_by_month: dict[str, int] = msgspec.field(default_factory=dict)
    """Finished catch-ups by the month they were due: where ``closed_catch_ups`` has some."""
    closed_by_status: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_student: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_tutor: dict[str, int] = msgspec.field(default_factory=dict)
    open: dict[str, CatchUpEntry] = msgspec.field(default_factory=dict)


class ClosedCatchUps(Document, kw_only=True):
    """A centre's finished (completed or cancelled) catch-ups due in one month, by id."""

    centre_id: str
    month: str
    rows: dict[str, CatchUpEntry] = msgspec.field(default_factory=dict)


def closed_catch_ups_key(centre_id: str, month: str) -> str:
    return f"{centre_id}:{month}"
