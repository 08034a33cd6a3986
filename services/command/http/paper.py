"""The routes of paper work that are not a JSON body in and out: worksheets answered as one PDF,
and scans and voice comments sent as files. Each builds its command from what it received and
runs it through :meth:`TutoringCentres.handle`, as every other route does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID, uuid4, uuid5

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter

from services.command.application import TutoringCentres
from services.command.bus import VERBS
from services.command.commands.base import Command
from services.command.commands.paper import (
    AttachVoiceComment,
    CodeOnPage,
    HandInPaper,
    PrintHomeworkWorksheet,
    PrintSessionWorksheets,
)
from services.command.http.adapter import (
    POSITION_HEADER,
    IdempotencyHeader,
    command_answer,
)
from services.command.http.fast import idempotency_of
from services.command.http.problems import COMMAND
from services.command.metrics import COMMANDS
from services.command.responses import PaperUploadView, WorksheetsView, answer_type
from shared.blobs.store import BlobStore
from shared.events import Question
from shared.events.paper import MAX_PAGES, ScannedPage
from shared.paper.scans import PreparedPage, ScanLimits, ScanRejected, find_code, prepare_scan
from shared.paper.settings import PaperSettings
from shared.paper.voice import voice_comment
from shared.paper.worksheet import WorksheetSheet, render_worksheets
from shared.tenancy import Actor, Permission

PDF = "application/pdf"
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes of a multipart body besides its files' own (boundaries, part headers)."""
TAG = "paper work"


@dataclass
class ScanForm:
    files: list[UploadFile]
    """Photos (JPEG, PNG, WebP) or PDFs of the pages, in order."""


Files = Annotated[
    ScanForm,
    Body(
        media_type=RequestEncodingType.MULTI_PART,
        description="`files`: photos (JPEG, PNG, WebP) or PDFs of the pages, in order",
    ),
]
WorkIds = Annotated[
    list[UUID] | None,
    QueryParameter(
        name="workId",
        required=False,
        max_items=100,
        description="Only these pieces of work (repeat the parameter); by default all of them",
    ),
]
_PDF_ANSWER = {
    200: ResponseSpec(
        data_container=bytes,
        media_type=PDF,
        generate_examples=False,
        description="One PDF: a sheet per student and piece of work, each page with its QR "
        "code and the short code under it",
    )
}


@dataclass
class VoiceCommentForm:
    file: UploadFile


def _options(permission: Permission, command: type[Command]) -> dict[str, Any]:
    return {"permission": permission, COMMAND: command}


@post(
    "/api/v1/sessions/{session_id:uuid}/worksheets",
    status_code=200,
    summary="Print worksheets for the work set in a session: one PDF for the whole session",
    operation_id="printSessionWorksheets",
    tags=[TAG],
    responses=_PDF_ANSWER,
    opt=_options(Permission.PAPER_PRINT, PrintSessionWorksheets),
)
async def print_session_worksheets(
    session_id: Annotated[UUID, PathParameter()],
    actor: NamedDependency[Actor],
    centres: NamedDependency[TutoringCentres],
    work_ids: WorkIds = None,
) -> Response[bytes]:
    command = PrintSessionWorksheets(session_id=session_id, work_ids=work_ids)
    return await _worksheets(centres, actor, command, f"worksheets-{session_id}.pdf")


@post(
    "/api/v1/homework/{homework_id:uuid}/worksheet",
    status_code=200,
    summary="Print the worksheet of a homework as a PDF",
    operation_id="printHomeworkWorksheet",
    tags=[TAG],
    responses=_PDF_ANSWER,
    opt=_options(Permission.PAPER_PRINT, PrintHomeworkWorksheet),
)
async def print_homework_worksheet(
    homework_id: Annotated[UUID, PathParameter()],
    actor: NamedDependency[Actor],
    centres: NamedDependency[TutoringCentres],
) -> Response[bytes]:
    command = PrintHomeworkWorksheet(homework_id=homework_id)
    return await _worksheets(centres, actor, command, f"homework-{homework_id}.pdf")


async def _worksheets(
    centres: TutoringCentres, actor: Actor, command: Command, filename: str
) -> Response[bytes]:
    result = await anyio.to_thread.run_sync(lambda: centres.handle(actor, command))
    body = result.body
    if centres.privacy is not None:  # the students' names, sealed as recorded, printed plain
        revealer, encoded = centres.privacy.revealer, msgspec.json.encode(body)
        body = msgspec.json.decode(
            await anyio.to_thread.run_sync(revealer.json, encoded, actor.centre_id)
        )
    view = msgspec.convert(body, WorksheetsView)
    pdf = await anyio.to_thread.run_sync(render_worksheets, _printable(view))
    COMMANDS.labels(command=VERBS[type(command)].name, outcome="ok").inc()
    return Response(
        pdf,
        media_type=PDF,
        headers={
            POSITION_HEADER: str(result.position),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def _printable(view: WorksheetsView) -> list[WorksheetSheet]:
    return [
        WorksheetSheet(
            code=sheet.code,
            title=sheet.title,
            student_name=sheet.student_name,
            centre_name=view.centre_name,
            heading=sheet.heading,
            instructions=sheet.instructions,
            questions=[
                Question(
                    question_id=q.question_id,
                    prompt=q.prompt,
                    points=q.points,
                    options=tuple(q.options),
                )
                for q in sheet.questions
            ],
        )
        for sheet in view.sheets
    ]


async def hand_in_paper(
    request: Request[Any, Any, Any],
    actor: NamedDependency[Actor],
    centres: NamedDependency[TutoringCentres],
    blobs: NamedDependency[BlobStore],
    paper: NamedDependency[PaperSettings],
    data: Files,
    idempotency_key: IdempotencyHeader = None,
) -> Response[answer_type(PaperUploadView)]:  # type: ignore[valid-type]
    """The pages are stored (EXIF removed, upright), their QR codes read, and the upload filed
    against the work its sheet code names; when no code can be read it is kept as UNROUTABLE
    until someone types the short code in (`POST …/route`)."""
    if not 1 <= len(data.files) <= paper.max_files:
        raise ScanRejected(422, f"send 1 to {paper.max_files} files")
    contents = [await upload.read() for upload in data.files]
    limits = ScanLimits.from_settings(paper)
    pages, codes = await anyio.to_thread.run_sync(
        lambda: _read_scans(contents, limits, blobs, actor.centre_id)
    )
    key = (
        None
        if idempotency_key is None
        else idempotency_of(request, idempotency_key, [repr(page).encode() for page in pages])
    )
    upload_id = uuid4() if key is None else uuid5(actor.user_id, f"paper-upload:{key.key}")
    command = HandInPaper(upload_id=upload_id, pages=pages, codes=codes)
    result = await anyio.to_thread.run_sync(lambda: centres.handle(actor, command, idempotency=key))
    return command_answer(result, VERBS[HandInPaper])


def _read_scans(
    contents: Sequence[bytes], limits: ScanLimits, blobs: BlobStore, centre_id: str
) -> tuple[list[ScannedPage], list[CodeOnPage]]:
    prepared: list[PreparedPage] = []
    for index, content in enumerate(contents):
        try:
            prepared.extend(prepare_scan(content, limits))
        except ScanRejected as rejected:
            rejected.field = f"files[{index}]"
            raise
        if len(prepared) > MAX_PAGES:
            raise ScanRejected(422, f"an upload has at most {MAX_PAGES} pages")
    pages, codes = [], []
    for number, page in enumerate(prepared):
        key = blobs.put(centre_id, page.data, page.content_type)
        pages.append(
            ScannedPage(
                blob_key=key,
                content_type=page.content_type,
                width=page.width,
                height=page.height,
                size=len(page.data),
            )
        )
        code = find_code(page)
        if code is not None:
            codes.append(CodeOnPage(page=number, code=code))
    return pages, codes


async def attach_voice_comment(
    request: Request[Any, Any, Any],
    upload_id: Annotated[UUID, PathParameter()],
    actor: NamedDependency[Actor],
    centres: NamedDependency[TutoringCentres],
    blobs: NamedDependency[BlobStore],
    paper: NamedDependency[PaperSettings],
    data: Annotated[
        VoiceCommentForm,
        Body(
            media_type=RequestEncodingType.MULTI_PART,
            description="`file`: Ogg (Opus, Vorbis), MP4/M4A, MP3 or WAV, at most 3 minutes",
        ),
    ],
    idempotency_key: IdempotencyHeader = None,
) -> Response[answer_type(PaperUploadView)]:  # type: ignore[valid-type]
    content = await data.file.read()

    def store() -> AttachVoiceComment:
        content_type, seconds = voice_comment(content, max_bytes=paper.max_file_bytes)
        key = blobs.put(actor.centre_id, content, content_type)
        return AttachVoiceComment(
            upload_id=upload_id, blob_key=key, content_type=content_type, seconds=seconds
        )

    command = await anyio.to_thread.run_sync(store)
    key = (
        None
        if idempotency_key is None
        else idempotency_of(request, idempotency_key, [command.blob_key.encode()])
    )
    result = await anyio.to_thread.run_sync(lambda: centres.handle(actor, command, idempotency=key))
    return command_answer(result, VERBS[AttachVoiceComment])


def paper_route_handlers(settings: PaperSettings) -> list[HTTPRouteHandler]:
    """The routes; those receiving files accept as many bytes as the files allowed."""
    max_upload_bytes = settings.max_file_bytes * settings.max_files + MULTIPART_OVERHEAD
    return [
        print_session_worksheets,
        print_homework_worksheet,
        post(
            "/api/v1/paper/uploads",
            status_code=201,
            summary="Hand in paper work: photos or a PDF of a worksheet, filed by its QR code",
            operation_id="handInPaper",
            tags=[TAG],
            opt=_options(Permission.PAPER_HAND_IN, HandInPaper),
            request_max_body_size=max_upload_bytes,
        )(hand_in_paper),
        post(
            "/api/v1/paper/uploads/{upload_id:uuid}/voice-comment",
            status_code=200,
            summary="Attach a spoken comment (up to 3 minutes) to paper work being marked",
            operation_id="attachVoiceComment",
            tags=[TAG],
            opt=_options(Permission.WORK_GRADE, AttachVoiceComment),
            request_max_body_size=max_upload_bytes,
        )(attach_voice_comment),
    ]
