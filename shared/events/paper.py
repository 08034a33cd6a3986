"""Work done on paper: printed worksheets, the scans that come back, and marking them in ink.

A printed worksheet carries a sheet code (in its QR code and printed under it): opaque, signed
by the centre's deployment, and registered by :class:`WorksheetPrinted` on the ``Worksheet``
aggregate whose id the code names. A scan is a ``PaperUpload``: uploaded, then routed to the
work its code names (or unroutable until someone types the code in), then annotated page by
page, scored against a rubric and handed back. Coordinates of ink are fractions of the page's
width and height (0 to 1, from the top left), so they hold at any resolution.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

import msgspec

from shared.events.base import Event

MAX_STROKE_POINTS = 2000
MAX_PAGES = 20
VOICE_COMMENT_SECONDS = 180
MAX_RUBRIC_CRITERIA = 20

Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Colour = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


class WorkKind(StrEnum):
    EXERCISE = "EXERCISE"
    """An exercise set for a student in a session (a ``work_id`` of their seat)."""
    HOMEWORK = "HOMEWORK"


class RouteMethod(StrEnum):
    QR_CODE = "QR_CODE"
    """Found in the QR code of a page."""
    SHORT_CODE = "SHORT_CODE"
    """Typed in by a person from the code printed under the QR code."""


class StampKind(StrEnum):
    TICK = "TICK"
    CROSS = "CROSS"
    STAR = "STAR"


class Point(msgspec.Struct, frozen=True, array_like=True):
    x: Fraction
    y: Fraction


class Stroke(msgspec.Struct, frozen=True, kw_only=True, tag="stroke", rename="camel"):
    """A pen stroke: a path through points, in a colour and a width (fraction of page width)."""

    points: Annotated[tuple[Point, ...], msgspec.Meta(min_length=1, max_length=MAX_STROKE_POINTS)]
    colour: Colour = "#d62828"
    width: Annotated[float, msgspec.Meta(gt=0, le=0.05)] = 0.004


class Stamp(msgspec.Struct, frozen=True, kw_only=True, tag="stamp", rename="camel"):
    kind: StampKind
    at: Point
    size: Annotated[float, msgspec.Meta(gt=0, le=0.3)] = 0.05


MAX_NOTE_TEXT = 500
"""Characters of a text written on a page (the command refuses more)."""

SEALED_NOTE_TEXT = 3000
"""Characters a note's text may have in an event: sealed (docs/privacy.md), a text of
:data:`MAX_NOTE_TEXT` characters of up to 4 bytes each takes at most 2,745."""


class TextNote(msgspec.Struct, frozen=True, kw_only=True, tag="text", rename="camel"):
    at: Point
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=SEALED_NOTE_TEXT)]
    colour: Colour = "#d62828"
    size: Annotated[float, msgspec.Meta(gt=0, le=0.1)] = 0.025


Mark = Stroke | Stamp | TextNote
"""One piece of ink on a page."""


class ScannedPage(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A page as stored: EXIF stripped, upright, its content-addressed key in the blob store."""

    blob_key: str
    content_type: str
    width: int
    height: int
    size: int
    """Bytes."""


class RubricScore(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    criterion: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    points: Annotated[float, msgspec.Meta(ge=0)]
    max_points: Annotated[int, msgspec.Meta(ge=1, le=100)]


class WorksheetPrinted(Event, frozen=True, kw_only=True):
    """A sheet was first printed for a student's piece of work; ``code`` is what its QR code
    and the short code under it carry. Printing it again records nothing new."""

    code: str
    student_id: UUID
    work_kind: WorkKind
    work_id: UUID
    session_id: UUID | None = None
    title: str

    aggregate_kind: ClassVar[str] = "paper"


class PaperUploaded(Event, frozen=True, kw_only=True):
    """Someone handed in photos or a PDF of paper work; the pages are in the blob store."""

    pages: tuple[ScannedPage, ...]

    aggregate_kind: ClassVar[str] = "paper"


class PaperRouted(Event, frozen=True, kw_only=True):
    """The upload was filed against the work its sheet code names, and waits to be marked."""

    code: str
    method: RouteMethod
    student_id: UUID
    work_kind: WorkKind
    work_id: UUID
    session_id: UUID | None = None
    teacher_id: UUID
    """Who marks it: the session's tutor, or the homework's teacher."""
    title: str
    max_score: int
    page: int | None = None
    """The page whose QR code was read (0-based); none when the code was typed in."""

    aggregate_kind: ClassVar[str] = "paper"


class PaperUnroutable(Event, frozen=True, kw_only=True):
    """No page carried a readable sheet code of this centre: someone has to type it in."""

    reason: str

    aggregate_kind: ClassVar[str] = "paper"


class PaperAnnotated(Event, frozen=True, kw_only=True):
    """The tutor put ink on a page. In order, these replay the marking stroke by stroke."""

    annotation_id: UUID
    page: int
    mark: Mark

    aggregate_kind: ClassVar[str] = "paper"


class PaperAnnotationErased(Event, frozen=True, kw_only=True):
    annotation_id: UUID

    aggregate_kind: ClassVar[str] = "paper"


class PaperVoiceCommentAttached(Event, frozen=True, kw_only=True):
    """A spoken comment on the work (replacing any earlier one), kept in the blob store."""

    blob_key: str
    content_type: str
    seconds: float

    aggregate_kind: ClassVar[str] = "paper"


class PaperScored(Event, frozen=True, kw_only=True):
    """The rubric's points, criterion by criterion; ``score`` is on the work's own scale."""

    rubric: tuple[RubricScore, ...]
    score: float
    max_score: int

    aggregate_kind: ClassVar[str] = "paper"


class PaperHandedBack(Event, frozen=True, kw_only=True):
    """The marking is finished: the student and their parents see the marked pages and the
    score; the work is graded with it (its own event carries the XP)."""

    student_id: UUID
    work_kind: WorkKind
    work_id: UUID
    session_id: UUID | None = None
    score: float
    max_score: int
    feedback: str | None = None

    aggregate_kind: ClassVar[str] = "paper"
