"""Indexes over a centre's history: small documents the centre-wide reports read instead of
every session or catch-up document the centre ever had.

- ``help_requests``: one tutor's help requests raised in one month (UTC), keyed
  ``<centre>:<tutor>:<YYYY-MM>``, the few facts its figures count of each (:class:`HelpFacts`,
  worked out once by the projection) kept as columns (:class:`HelpColumns`); ``help_index``,
  one per centre, lists each tutor's months. The help-request analytics of a period read the
  months it touches.
- ``open_catch_ups``: one per centre, its catch-ups still open (with their session's tutor)
  and how many finished ones there are, by due month, status, tutor and student;
  ``closed_catch_ups``: the finished ones due in one month, keyed ``<centre>:<YYYY-MM>``. The
  catch-up list reads the open ones and, past them, the months it pages through.

Each is shaped by the same events as the documents it indexes, so a rebuild produces it.
"""

from __future__ import annotations

import msgspec

from shared.events import HELP_PRIORITIES, HelpPriority, HelpRequestStatus
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


class HelpColumns(msgspec.Struct, array_like=True, gc=False):
    """A tutor's requests of a month as columns: priority by priority (in the order of
    :data:`~shared.events.HELP_PRIORITIES`, each from ``bounds[k]`` to ``bounds[k + 1]``),
    in the order they were raised (then by id). The analytics of a period count them with no
    step of Python per request: a priority's requests raised in the period are a slice
    ``[i:j]`` of ``raised_at`` (two bisections within the priority's bounds); ``status``
    holds one letter per request (:data:`STATUS_LETTERS`), counted in the slice;
    ``breached``, ``open_at``, ``response_at`` and ``resolution_at`` are the positions
    (ascending) of the requests that breached their SLA once closed, that are not closed (due
    at ``open_until``), that were answered (after ``response`` seconds) and that were
    resolved (after ``resolution`` seconds), so their part of the slice is found by bisecting
    the positions too. A few lists per month, not per request or priority: fewer objects to
    decode and for the garbage collector to count."""

    bounds: list[int]
    raised_at: list[Instant]
    status: str
    breached: list[int]
    open_at: list[int]
    open_until: list[Instant]
    response_at: list[int]
    response: list[float]
    resolution_at: list[int]
    resolution: list[float]


STATUS_LETTERS: dict[HelpRequestStatus, str] = {
    HelpRequestStatus.PENDING: "P",
    HelpRequestStatus.ACKNOWLEDGED: "A",
    HelpRequestStatus.IN_PROGRESS: "I",
    HelpRequestStatus.RESOLVED: "R",
    HelpRequestStatus.CANCELLED: "W",
    HelpRequestStatus.CLOSED: "C",
}
"""A request's status as :attr:`HelpColumns.status` writes it."""

_STATUSES = {letter: status for status, letter in STATUS_LETTERS.items()}
_RANKS = {priority: rank for rank, priority in enumerate(HELP_PRIORITIES)}


def help_columns(facts: dict[str, HelpFacts]) -> tuple[HelpColumns | None, list[str]]:
    """The columns of ``facts`` (a month's, by id), and the ids of their requests in the same
    order: a function of the facts alone, whatever order they were written in."""
    if not facts:
        return None, []
    ordered = sorted(
        facts.items(), key=lambda item: (_RANKS[item[1].priority], item[1].raised_at, item[0])
    )
    c = HelpColumns([], [], "", [], [], [], [], [], [], [])
    letters = []
    rank = -1
    for at, (_, f) in enumerate(ordered):
        while rank < _RANKS[f.priority]:
            c.bounds.append(at)
            rank += 1
        c.raised_at.append(f.raised_at)
        letters.append(STATUS_LETTERS[f.status])
        if f.breached:
            c.breached.append(at)
        if f.open_until is not None:
            c.open_at.append(at)
            c.open_until.append(f.open_until)
        if f.response is not None:
            c.response_at.append(at)
            c.response.append(f.response)
        if f.resolution is not None:
            c.resolution_at.append(at)
            c.resolution.append(f.resolution)
    c.bounds.extend([len(ordered)] * (len(HELP_PRIORITIES) + 1 - len(c.bounds)))
    c.status = "".join(letters)
    return c, [request_id for request_id, _ in ordered]


class HelpRequestsOfMonth(Document, kw_only=True):
    """A tutor's help requests raised in one month: the facts of each as columns
    (:func:`help_columns`), which the analytics read, and the ids of their requests in the
    same order (which the projection reads to write a request's facts again).

    An earlier release kept each request's facts by id (``facts``), and one before it each
    request as the session showed it (``requests``); the analytics still count those (the
    facts, and the requests not among them), and the projection writes columns when it next
    writes the month (:func:`month_facts`)."""

    centre_id: str
    columns: HelpColumns | None = None
    facts: dict[str, HelpFacts] = msgspec.field(default_factory=dict)
    ids: list[str] = msgspec.field(default_factory=list)
    month: str
    requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)
    tutor_id: str


def month_facts(month: HelpRequestsOfMonth) -> dict[str, HelpFacts]:
    """The facts of every request of ``month``, by id, whichever release wrote it: from its
    columns, its facts, and the requests an earlier release kept whole."""
    facts: dict[str, HelpFacts] = {}
    c = month.columns
    if c is not None:
        breached = set(c.breached)
        due = dict(zip(c.open_at, c.open_until, strict=True))
        response = dict(zip(c.response_at, c.response, strict=True))
        resolution = dict(zip(c.resolution_at, c.resolution, strict=True))
        for rank, priority in enumerate(HELP_PRIORITIES):
            for at in range(c.bounds[rank], c.bounds[rank + 1]):
                facts[month.ids[at]] = HelpFacts(
                    raised_at=c.raised_at[at],
                    priority=priority,
                    status=_STATUSES[c.status[at]],
                    response=response.get(at),
                    resolution=resolution.get(at),
                    breached=at in breached,
                    open_until=due.get(at),
                )
    facts.update(month.facts)
    for request_id, request in month.requests.items():
        facts.setdefault(request_id, help_facts(request))
    return facts


class HelpMonthColumns(Document, kw_only=True):
    """:class:`HelpRequestsOfMonth` as the analytics read it: the columns decoded, the ids
    skipped, the facts and requests of an earlier release left as their JSON (decoded only for
    a month written without columns)."""

    centre_id: str
    columns: HelpColumns | None = None
    facts: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    month: str
    requests: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
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
