"""What several views share: documents as JSON, what is overdue, help requests with their
waiting and answering times."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Final, Protocol

from shared.events import OPEN_CATCH_UPS, OPEN_HELP_REQUESTS
from shared.readmodels.documents import HelpRequest, JsonObject, as_json
from shared.readmodels.times import parse, seconds_between

Names = dict[str, str]
"""People's names by id (those who are people)."""

OrderName = Callable[[str | None], str]
"""The sort key of a name in a view that orders people by name. Names are stored sealed, so
an answer's edge gives one that opens them for its reader's centre
(:meth:`shared.privacy.Revealer.name_order`); by default (:func:`as_stored`) the name as
stored."""


def as_stored(name: str | None) -> str:
    """A name's sort key as it is stored (none: first)."""
    return name or ""


class NameOpener(Protocol):
    """What opens sealed names for a centre's readers (:class:`shared.privacy.Revealer`)."""

    def name_order(self, centre_id: str) -> OrderName: ...


def name_order(opener: NameOpener | None, centre_id: str) -> OrderName:
    """How a view read for ``centre_id`` orders people by name: by the name its readers see
    (opened for that centre), or as stored where nothing opens names."""
    return as_stored if opener is None else opener.name_order(centre_id)


class Due(Protocol):
    """Something owed by a time: a catch-up or homework."""

    @property
    def status(self) -> str: ...

    @property
    def due_at(self) -> str: ...


def overdue(work: Due, now: datetime, still_open: Collection[str] = OPEN_CATCH_UPS) -> bool:
    """Still open past its due time (a catch-up, or homework with ``OPEN_HOMEWORK``): as the
    system recorded it (a catch-up's ``overdueAt``, ``CatchUpBecameOverdue``), or, for a due
    time that passed and is not recorded yet (the scheduler behind), as ``now`` says."""
    if work.status not in still_open:
        return False
    recorded: object = getattr(work, "overdue_at", None)
    return isinstance(recorded, str) or now > parse(work.due_at)


def help_view(request: HelpRequest, now: datetime) -> JsonObject:
    """A help request with how long it has waited and how fast it was answered."""
    open_ = request.status in OPEN_HELP_REQUESTS
    first_response = request.acknowledged_at or request.started_at
    finished = request.resolved_at
    return {
        **as_json(request),
        "waitingSeconds": seconds_between(request.raised_at, now) if open_ else None,
        "slaBreached": open_ and now > parse(request.sla_due_at),
        "responseSeconds": (
            seconds_between(request.raised_at, parse(first_response)) if first_response else None
        ),
        "resolutionSeconds": (
            seconds_between(request.raised_at, parse(finished)) if finished else None
        ),
    }


JSON_ORDER: Final = "deterministic"
"""The order in which views convert records of documents to JSON together
(``msgspec.to_builtins(records, order=JSON_ORDER)``): every record declares its fields in the
sorted order of their JSON names (:mod:`shared.readmodels.documents.base`), so msgspec's
``deterministic`` order (fields as declared, dict keys sorted) gives each the keys of
:func:`as_json`, the stored order, about twice as fast as its ``sorted`` order."""
