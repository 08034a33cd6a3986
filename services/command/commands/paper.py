"""Paper work: print worksheets, hand scans in, and mark them in ink."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.command.commands.base import Command, Part
from services.command.commands.exercises import Feedback
from shared.events.paper import MAX_PAGES, MAX_RUBRIC_CRITERIA, Mark, RubricScore, ScannedPage

PageNumber = Annotated[int, msgspec.Meta(ge=0, lt=MAX_PAGES)]
"""A page of an upload, from 0."""
ShortCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
"""The code printed under a worksheet's QR code, as a person types it."""


class PrintSessionWorksheets(Command, frozen=True):
    """Worksheets for the work set in a session: each piece of work of ``work_ids``, or every
    piece of work set in it. The answer is one PDF."""

    session_id: UUID
    work_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=100)] | None = None


class PrintHomeworkWorksheet(Command, frozen=True):
    homework_id: UUID


class CodeOnPage(Part, frozen=True):
    page: PageNumber
    code: str


class HandInPaper(Command, frozen=True):
    """A scan whose pages are stored; ``codes`` are the sheet codes read from their QR codes.
    Built by the upload route from the files it received."""

    upload_id: UUID
    pages: Annotated[list[ScannedPage], msgspec.Meta(min_length=1, max_length=MAX_PAGES)]
    codes: list[CodeOnPage]


class RoutePaper(Command, frozen=True):
    """File an upload whose code could not be read: someone types the short code in."""

    upload_id: UUID
    short_code: ShortCode


class AnnotatePaper(Command, frozen=True):
    upload_id: UUID
    page: PageNumber
    mark: Mark


class EraseAnnotation(Command, frozen=True):
    upload_id: UUID
    annotation_id: UUID


class AttachVoiceComment(Command, frozen=True):
    """A voice comment already stored; built by the voice-comment upload route."""

    upload_id: UUID
    blob_key: str
    content_type: str
    seconds: float


class ScorePaper(Command, frozen=True):
    upload_id: UUID
    rubric: Annotated[list[RubricScore], msgspec.Meta(min_length=1, max_length=MAX_RUBRIC_CRITERIA)]


class HandBackPaper(Command, frozen=True):
    upload_id: UUID
    feedback: Feedback | None = None
