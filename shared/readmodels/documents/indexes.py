"""Indexes over a centre's history: small documents the centre-wide reports read instead of
every session or catch-up document the centre ever had.

- ``help_requests``: one tutor's help requests raised in one month (UTC), keyed
  ``<centre>:<tutor>:<YYYY-MM>``; ``help_index``, one per centre, lists each tutor's months.
  The help-request analytics of a period read the months it touches.
- ``open_catch_ups``: one per centre, its catch-ups still open (with their session's tutor)
  and how many finished ones there are, by due month, status, tutor and student;
  ``closed_catch_ups``: the finished ones due in one month, keyed ``<centre>:<YYYY-MM>``. The
  catch-up list reads the open ones and, past them, the months it pages through.

Each is shaped by the same events as the documents it indexes, so a rebuild produces it.
"""

from __future__ import annotations

import msgspec

from shared.readmodels.documents.base import Document, Instant, Record
from shared.readmodels.documents.classes import CatchUp
from shared.readmodels.documents.sessions import HelpRequest


def month_of(instant: str) -> str:
    """``YYYY-MM`` of a document's time (ISO 8601 in UTC)."""
    return instant[:7]


class HelpRequestsOfMonth(Document, kw_only=True):
    """A tutor's help requests raised in one month, by id, as the session shows them."""

    centre_id: str
    tutor_id: str
    month: str
    requests: dict[str, HelpRequest] = msgspec.field(default_factory=dict)


class HelpIndex(Document, kw_only=True):
    """Per tutor of the centre, the months (sorted) in which their students raised help."""

    centre_id: str
    months: dict[str, list[str]] = msgspec.field(default_factory=dict)


def help_month_key(centre_id: str, tutor_id: str, month: str) -> str:
    return f"{centre_id}:{tutor_id}:{month}"


class CatchUpEntry(Record, kw_only=True):
    """A catch-up as the catch-up list pages it: the catch-up document, and its session's tutor
    (which never changes), title and start (kept up to date when the session is moved)."""

    tutor_id: str
    session_title: str
    session_starts_at: Instant
    catch_up: CatchUp


class OpenCatchUps(Document, kw_only=True):
    """A centre's open catch-ups, and counts of its finished ones."""

    centre_id: str
    open: dict[str, CatchUpEntry] = msgspec.field(default_factory=dict)
    closed_by_month: dict[str, int] = msgspec.field(default_factory=dict)
    """Finished catch-ups by the month they were due: where ``closed_catch_ups`` has some."""
    closed_by_status: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_tutor: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_student: dict[str, int] = msgspec.field(default_factory=dict)


class ClosedCatchUps(Document, kw_only=True):
    """A centre's finished (completed or cancelled) catch-ups due in one month, by id."""

    centre_id: str
    month: str
    rows: dict[str, CatchUpEntry] = msgspec.field(default_factory=dict)


def closed_catch_ups_key(centre_id: str, month: str) -> str:
    return f"{centre_id}:{month}"
