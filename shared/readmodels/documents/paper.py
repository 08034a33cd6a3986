"""The ``paper`` document: one scan of paper work, where it was filed, and its marking in ink.

Every piece of ink is kept in the order it was put on the page, with its time and position
(the notification id of its event), and an erased one stays in the history with the time it
was erased, so the marking can be replayed as it was at any moment. Page images stay in the
blob store: the document keeps their keys, and a view makes short-lived signed URLs to them
when it is read.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec
from msgspec import UNSET, UnsetType

from shared.events.paper import Mark, RouteMethod, RubricScore, WorkKind
from shared.readmodels.documents.base import Document, Instant, Record
from shared.tenancy.roles import Role


class PaperStatus(StrEnum):
    UNROUTABLE = "UNROUTABLE"
    """Not filed against any work yet: no page carried a readable code of this centre."""
    AWAITING_MARKING = "AWAITING_MARKING"
    """Filed against a student's work; no ink, voice or score yet."""
    MARKING = "MARKING"
    """The tutor began marking it."""
    HANDED_BACK = "HANDED_BACK"
    """Marked: the student and their parents see it."""


class PaperPage(Record, kw_only=True):
    """A scanned page as stored (upright, without metadata)."""

    blob_key: str
    content_type: str
    height: int
    size: int
    """Bytes."""
    width: int


class PaperRouting(Record, kw_only=True):
    """The work the upload was filed against (``PaperRouted``)."""

    max_score: int
    method: RouteMethod
    page: int | None
    """The page whose QR code was read; none when the code was typed in."""
    routed_at: Instant
    routed_by: str
    routed_position: int
    """The notification id of ``PaperRouted``."""
    session_id: str | None
    student_id: str
    teacher_id: str
    """Who marks it."""
    title: str
    work_id: str
    work_kind: WorkKind


class PaperAnnotation(Record, kw_only=True):
    """One piece of ink, as it was put on the page."""

    annotation_id: str
    at: Instant
    by: str
    erased_at: Instant | UnsetType = UNSET
    erased_position: int | UnsetType = UNSET
    mark: Mark
    page: int
    position: int
    """The notification id of its event."""


class PaperVoiceComment(Record, kw_only=True):
    at: Instant
    blob_key: str
    content_type: str
    position: int
    seconds: float


class PaperScore(Record, kw_only=True):
    at: Instant
    by: str
    max_score: int
    position: int
    rubric: list[RubricScore]
    score: float


class Paper(Document, kw_only=True):
    """One per upload."""

    annotations: list[PaperAnnotation] = msgspec.field(default_factory=list)
    """Every annotation ever made, in order; erased ones carry ``erasedAt``."""
    centre_id: str
    feedback: str | None = None
    files_erased_at: Instant | UnsetType = UNSET
    """When the student's erasure deleted the upload's files (its page photos and voice
    comments) from the blob store: their keys stay, the files are gone."""
    handed_back_at: Instant | None = None
    handed_back_by: str | None = None
    handed_back_position: int | None = None
    max_score: int | None = None
    pages: list[PaperPage]
    routing: PaperRouting | None = None
    score: float | None = None
    """The score handed back (on the work's own scale)."""
    scores: list[PaperScore] = msgspec.field(default_factory=list)
    """In order; the last is the score now."""
    status: PaperStatus = PaperStatus.UNROUTABLE
    unroutable_at: Instant | None = None
    unroutable_reason: str | None = None
    upload_id: str
    uploaded_at: Instant
    uploaded_by: str
    uploaded_by_role: Role
    uploaded_position: int
    voice_comments: list[PaperVoiceComment] = msgspec.field(default_factory=list)
    """In order; the last is the one attached now."""


class PaperSummary(Record, kw_only=True):
    """What the student's and the marking tutor's documents hold about a routed upload."""

    handed_back_at: Instant | None = None
    max_score: int
    pages: int
    routed_at: Instant
    score: float | None = None
    """Once handed back."""
    session_id: str | None
    status: PaperStatus
    student_id: str
    teacher_id: str
    title: str
    upload_id: str
    uploaded_at: Instant
    work_id: str
    work_kind: WorkKind


def summary_of(paper: Paper) -> PaperSummary | None:
    """The upload as the student's and the tutor's documents hold it (none until routed)."""
    routing = paper.routing
    if routing is None:
        return None
    return PaperSummary(
        upload_id=paper.upload_id,
        student_id=routing.student_id,
        teacher_id=routing.teacher_id,
        work_kind=routing.work_kind,
        work_id=routing.work_id,
        session_id=routing.session_id,
        title=routing.title,
        status=paper.status,
        pages=len(paper.pages),
        uploaded_at=paper.uploaded_at,
        routed_at=routing.routed_at,
        max_score=routing.max_score,
        score=paper.score,
        handed_back_at=paper.handed_back_at,
    )
