"""The centre's reports: the catch-up list and help-request analytics."""

from __future__ import annotations

import base64
import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain

import msgspec

from shared.events import (
    HELP_PRIORITIES,
    OPEN_CATCH_UPS,
    OPEN_HELP_REQUESTS,
    HelpPriority,
    HelpRequestStatus,
)
from shared.readmodels.documents import (
    CatchUp,
    CatchUpEntry,
    HelpRequest,
    HelpRequestsOfMonth,
    JsonObject,
    Session,
    as_json,
)
from shared.readmodels.documents.indexes import (
    HelpColumns,
    HelpFacts,
    HelpMonthColumns,
    help_facts,
)
from shared.readmodels.times import iso, seconds_between
from shared.readmodels.views.common import JSON_ORDER, Names, OrderName, as_stored, overdue

UrgencyKey = tuple[int, str, str]

# --- the catch-up list ---------------------------------------------------------------------


def catch_up_row(catch_up: CatchUp, session: Session, names: Names, now: datetime) -> JsonObject:
    """One catch-up with its session's title and tutor, and whether (and how long) it is
    overdue."""
    return _catch_up_row(catch_up, session.title, session.starts_at, session.tutor_id, names, now)


def catch_up_entry_row(entry: CatchUpEntry, names: Names, now: datetime) -> JsonObject:
    """:func:`catch_up_row` of a catch-up as the centre's index keeps it."""
    return _catch_up_row(
        entry.catch_up, entry.session_title, entry.session_starts_at, entry.tutor_id, names, now
    )


def _catch_up_row(
    catch_up: CatchUp, title: str, starts_at: str, tutor_id: str, names: Names, now: datetime
) -> JsonObject:
    late = overdue(catch_up, now)
    return {
        **as_json(catch_up),
        "studentName": names.get(catch_up.student_id),
        "sessionTitle": title,
        "sessionStartsAt": starts_at,
        "tutorId": tutor_id,
        "tutorName": names.get(tutor_id),
        "overdue": late,
        "overdueSeconds": seconds_between(catch_up.due_at, now) if late else None,
    }


def catch_up_entry_rows(
    entries: Sequence[CatchUpEntry], names: Names, now: datetime
) -> list[JsonObject]:
    """:func:`catch_up_entry_row` of each of ``entries``: their catch-ups converted to JSON in
    one call (a page of them), each row then completed in place."""
    rows: list[JsonObject] = msgspec.to_builtins([e.catch_up for e in entries], order=JSON_ORDER)
    for row, entry in zip(rows, entries, strict=True):
        catch_up = entry.catch_up
        late = overdue(catch_up, now)
        row["studentName"] = names.get(catch_up.student_id)
        row["sessionTitle"] = entry.session_title
        row["sessionStartsAt"] = entry.session_starts_at
        row["tutorId"] = entry.tutor_id
        row["tutorName"] = names.get(entry.tutor_id)
        row["overdue"] = late
        row["overdueSeconds"] = seconds_between(catch_up.due_at, now) if late else None
    return rows


def catch_up_urgency(catch_up: CatchUp) -> UrgencyKey:
    """Open catch-ups first, the earliest due (so the longest overdue) at the top; then the
    finished ones. It depends on nothing but the document, so pages stay stable."""
    return (0 if catch_up.status in OPEN_CATCH_UPS else 1, catch_up.due_at, catch_up.catch_up_id)


def page_cursor(key: UrgencyKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def parse_page_cursor(cursor: str) -> UrgencyKey:
    """The key a ``page_cursor`` holds; ``ValueError`` for anything it did not make."""
    try:
        rank, due, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as error:
        raise ValueError("not a cursor this API returned") from error
    if not (isinstance(rank, int) and isinstance(due, str) and isinstance(key, str)):
        raise ValueError("not a cursor this API returned")
    return rank, due, key


# --- help-request analytics ----------------------------------------------------------------


class _Tally:
    """The figures of some help requests, added up one request at a time (the durations kept
    for the medians and p90)."""

    __slots__ = (
        "breached",
        "cancelled",
        "closed",
        "open",
        "raised",
        "resolution",
        "resolved",
        "response",
    )

    def __init__(self) -> None:
        self.raised = self.resolved = self.cancelled = self.closed = self.open = 0
        self.breached = 0
        self.response: list[float] = []
        self.resolution: list[float] = []

    def add(self, facts: HelpFacts, at: str) -> None:
        """One request's facts, its SLA judged at ``at`` (:func:`iso`) if it is still open."""
        self.raised += 1
        status = facts.status
        if status == HelpRequestStatus.RESOLVED:
            self.resolved += 1
        elif status == HelpRequestStatus.CANCELLED:
            self.cancelled += 1
        elif status == HelpRequestStatus.CLOSED:
            self.closed += 1
        elif status in OPEN_HELP_REQUESTS:
            self.open += 1
        if facts.breached or (facts.open_until is not None and at > facts.open_until):
            self.breached += 1
        if facts.response is not None:
            self.response.append(facts.response)
        if facts.resolution is not None:
            self.resolution.append(facts.resolution)

    def add_columns(
        self, columns: HelpColumns, lo: int, hi: int, since: str, until: str, at: str
    ) -> None:
        """The requests at ``[lo, hi)`` of ``columns`` (one priority's) raised in
        [since, until), as :meth:`add` counts each, found by bisection and counted by slice."""
        raised = columns.raised_at
        i, j = bisect_left(raised, since, lo, hi), bisect_left(raised, until, lo, hi)
        if i >= j:
            return
        self.raised += j - i
        status = columns.status[i:j]
        resolved, cancelled, closed = status.count("R"), status.count("W"), status.count("C")
        self.resolved += resolved
        self.cancelled += cancelled
        self.closed += closed
        self.open += j - i - resolved - cancelled - closed  # the statuses left are open ones
        breached = columns.breached
        self.breached += bisect_left(breached, j) - bisect_left(breached, i)
        open_at = columns.open_at
        if open_at:
            open_until = columns.open_until
            for k in range(bisect_left(open_at, i), bisect_left(open_at, j)):
                if at > open_until[k]:
                    self.breached += 1
        response_at = columns.response_at
        self.response.extend(
            columns.response[bisect_left(response_at, i) : bisect_left(response_at, j)]
        )
        resolution_at = columns.resolution_at
        self.resolution.extend(
            columns.resolution[bisect_left(resolution_at, i) : bisect_left(resolution_at, j)]
        )

    def include(self, other: _Tally) -> None:
        self.raised += other.raised
        self.resolved += other.resolved
        self.cancelled += other.cancelled
        self.closed += other.closed
        self.open += other.open
        self.breached += other.breached
        self.response.extend(other.response)
        self.resolution.extend(other.resolution)

    def figures(self) -> JsonObject:
        return {
            "raised": self.raised,
            "resolved": self.resolved,
            "cancelled": self.cancelled,
            "closed": self.closed,
            "open": self.open,
            "slaBreached": self.breached,
            "responseSeconds": _durations(self.response),
            "resolutionSeconds": _durations(self.resolution),
        }


_PRIORITIES = tuple((priority, priority.value) for priority in HELP_PRIORITIES)
"""The priorities in the order the figures list them, with their names (an enum's ``value``
is a property, slow to read in a loop)."""


def _durations(values: list[float]) -> JsonObject:
    """Count, mean, median and 90th percentile (nearest rank) of durations in seconds; the mean
    and median as ``statistics`` works them out (the sum by ``math.fsum`` over the count, the
    middle value or the mean of the middle two), without its checks and second sort. Sorts
    ``values`` in place (a tally's own list, which nothing reads in another order)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    values.sort()  # in place: a total then extended by sorted lists merges their runs
    ordered = values
    count = len(ordered)
    middle = count // 2
    median = ordered[middle] if count % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "count": count,
        "mean": round(math.fsum(ordered) / count, 3),
        "median": round(median, 3),
        "p90": round(ordered[math.ceil(0.9 * count) - 1], 3),
    }


_Tallies = dict[HelpPriority, _Tally]


def _tallies() -> _Tallies:
    return {priority: _Tally() for priority in HELP_PRIORITIES}


def _figures_by_priority(tallies: _Tallies) -> JsonObject:
    """The figures of each priority and of their total; each priority's durations sorted first,
    so the total's are sorted by merging them."""
    by_priority = {name: tallies[priority].figures() for priority, name in _PRIORITIES}
    total = _Tally()
    for tally in tallies.values():
        total.include(tally)
    return {"total": total.figures(), "byPriority": by_priority}


def help_request_stats(requests: list[HelpRequest], now: datetime) -> JsonObject:
    """Counts and timings of help requests. A request breached its SLA when it was still open
    after its due time: not resolved, withdrawn, or closed with its session by then (or, if
    still open, by ``now``). ``closed`` counts those closed because the session ended or the
    student left it: never answered, so not among the resolved."""
    tally, at = _Tally(), iso(now)
    for request in requests:
        tally.add(help_facts(request), at)
    return tally.figures()


def help_request_analytics(
    sessions: list[Session],
    names: Names,
    start: datetime,
    end: datetime,
    now: datetime,
    order_name: OrderName = as_stored,
) -> JsonObject:
    """Per tutor and per priority, the help requests raised in [start, end) in ``sessions``."""
    by_tutor: dict[str, list[HelpRequest]] = {}
    for session in sessions:
        by_tutor.setdefault(session.tutor_id, []).extend(
            request for seat in session.students.values() for request in seat.help_requests.values()
        )
    return help_request_analytics_of(by_tutor, names, start, end, now, order_name)


def help_request_analytics_of(
    requests_by_tutor: dict[str, list[HelpRequest]],
    names: Names,
    start: datetime,
    end: datetime,
    now: datetime,
    order_name: OrderName = as_stored,
) -> JsonObject:
    """Per tutor and per priority, those of each tutor's help requests raised in
    [start, end); tutors in the order of their names (``order_name``)."""
    return _analytics(
        ((tutor_id, map(help_facts, requests)) for tutor_id, requests in requests_by_tutor.items()),
        names,
        start,
        end,
        now,
        order_name,
    )


_FACTS = msgspec.json.Decoder(dict[str, HelpFacts])
_REQUESTS = msgspec.json.Decoder(dict[str, HelpRequest])


def _facts_of(month: HelpRequestsOfMonth | HelpMonthColumns) -> Iterable[HelpFacts]:
    """The facts of a month written without columns: those kept, and those of the whole
    requests (an earlier release's) not among them."""
    if isinstance(month, HelpMonthColumns):
        facts = _FACTS.decode(month.facts) if month.facts else {}
        requests = _REQUESTS.decode(month.requests) if month.requests else {}
    else:
        facts, requests = month.facts, month.requests
    return chain(facts.values(), (help_facts(r) for k, r in requests.items() if k not in facts))


def help_month_analytics(
    months: Sequence[HelpRequestsOfMonth | HelpMonthColumns],
    names: Names,
    start: datetime,
    end: datetime,
    now: datetime,
    order_name: OrderName = as_stored,
) -> JsonObject:
    """:func:`help_request_analytics_of` from tutors' months of help requests: the columns
    the projection kept of each priority's requests (times compared as strings, none parsed,
    each priority's requests of the period a slice), and, for a month written without them,
    the facts of each request and the facts of the whole requests an earlier release wrote."""
    low, high = start.astimezone(UTC), end.astimezone(UTC)
    since, until, at = iso(low), iso(high), iso(now)  # documents' times compare as strings
    by_tutor: dict[str, _Tallies] = {}
    for month in months:
        tallies = by_tutor.get(month.tutor_id)
        if tallies is None:
            tallies = by_tutor[month.tutor_id] = _tallies()
        columns = month.columns
        if columns is not None:
            bounds = columns.bounds
            for rank, (priority, _) in enumerate(_PRIORITIES):
                lo, hi = bounds[rank], bounds[rank + 1]
                if lo < hi:
                    tallies[priority].add_columns(columns, lo, hi, since, until, at)
        else:
            _count(tallies, _facts_of(month), since, until, at)
    return _answer(by_tutor, names, low, high, order_name)


def _count(tallies: _Tallies, facts: Iterable[HelpFacts], since: str, until: str, at: str) -> None:
    """Each of ``facts`` raised in [since, until) in the tally of its priority."""
    for f in facts:
        if since <= f.raised_at < until:
            tallies[f.priority].add(f, at)


def _analytics(
    facts_by_tutor: Iterable[tuple[str, Iterable[HelpFacts]]],
    names: Names,
    start: datetime,
    end: datetime,
    now: datetime,
    order_name: OrderName,
) -> JsonObject:
    """The figures of the requests raised in [start, end), a tutor's facts possibly in several
    parts (their months); each request counted in one pass, in its tutor's figures of its
    priority."""
    low, high = start.astimezone(UTC), end.astimezone(UTC)
    since, until, at = iso(low), iso(high), iso(now)  # documents' times compare as strings
    by_tutor: dict[str, _Tallies] = {}
    for tutor_id, facts in facts_by_tutor:
        tallies = by_tutor.get(tutor_id)
        if tallies is None:
            tallies = by_tutor[tutor_id] = _tallies()
        _count(tallies, facts, since, until, at)
    return _answer(by_tutor, names, low, high, order_name)


def _answer(
    by_tutor: dict[str, _Tallies],
    names: Names,
    low: datetime,
    high: datetime,
    order_name: OrderName,
) -> JsonObject:
    """The figures of each tutor with requests in [low, high), and of them all."""
    overall = _tallies()
    tutors = []
    for tutor_id, tallies in by_tutor.items():
        if not any(tally.raised for tally in tallies.values()):
            continue
        tutors.append(
            {"tutorId": tutor_id, "tutorName": names.get(tutor_id), **_figures_by_priority(tallies)}
        )
        for priority, tally in tallies.items():
            overall[priority].include(tally)
    tutors.sort(key=lambda t: (order_name(t["tutorName"]), t["tutorId"]))
    return {
        "from": low.isoformat().replace("+00:00", "Z"),
        "to": high.isoformat().replace("+00:00", "Z"),
        "tutors": tutors,
        "overall": _figures_by_priority(overall),
    }
