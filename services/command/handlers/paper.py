"""Paper work: print a session's worksheets, file the scans that come back, mark them in ink."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from services.command.commands.paper import (
    AnnotatePaper,
    AttachVoiceComment,
    EraseAnnotation,
    HandBackPaper,
    HandInPaper,
    PrintHomeworkWorksheet,
    PrintSessionWorksheets,
    RoutePaper,
    ScorePaper,
)
from services.command.domain.aggregate import InvalidValue, NotFound, RuleViolated
from services.command.domain.directory import Person
from services.command.domain.exercise import Exercise
from services.command.domain.homework import HANDED_IN, Homework
from services.command.domain.paper import PaperUpload, Worksheet
from services.command.domain.session import Session
from services.command.handlers.common import seat, session_run_by
from services.command.responses import (
    AnnotationView,
    PaperUploadView,
    SheetQuestion,
    SheetView,
    WorksheetsView,
)
from services.command.unit_of_work import UnitOfWork
from shared.events import WorkStatus
from shared.events.paper import RouteMethod, WorkKind
from shared.paper.codes import SheetCodes, parse_short_code, sheet_aggregate_id, short_code
from shared.tenancy import Forbidden, Role


class PaperNotSetUp(Exception):
    """This deployment has no key to sign worksheet codes with (HTTP 503)."""


# --- printing ----------------------------------------------------------------------------


def print_session_worksheets(command: PrintSessionWorksheets, uow: UnitOfWork) -> WorksheetsView:
    """A sheet for each piece of work set in the session (or each of ``work_ids``)."""
    session = session_run_by(uow, command.session_id)
    wanted = None if command.work_ids is None else set(command.work_ids)
    sheets = []
    for student_id in [*session.roster, *sorted(session.removed_students)]:
        held = seat(uow, session, student_id)
        for work in held.work.values():
            if wanted is not None and work.id not in wanted:
                continue
            exercise = uow.get(Exercise, work.exercise_id)
            sheets.append(
                _sheet(
                    uow,
                    student_id,
                    WorkKind.EXERCISE,
                    work.id,
                    session.id,
                    exercise.title,
                    _when(uow, "Session", session.starts_at),
                    [exercise],
                )
            )
    if wanted is not None:
        found = {sheet.work_id for sheet in sheets}
        for index, work_id in enumerate(command.work_ids or []):
            if work_id not in found:
                raise InvalidValue("no such work in this session", field=f"work_ids[{index}]")
    if not sheets:
        raise RuleViolated("no work is set in this session yet")
    return WorksheetsView(centre_name=uow.centre().name, sheets=sheets)


def print_homework_worksheet(command: PrintHomeworkWorksheet, uow: UnitOfWork) -> WorksheetsView:
    homework = uow.find(Homework, command.homework_id)
    if uow.actor.is_teacher_other_than(homework.teacher_id):
        raise Forbidden("a TEACHER prints the homework they mark")
    exercises = [uow.get(Exercise, i) for i in homework.exercise_ids]
    sheet = _sheet(
        uow,
        homework.student_id,
        WorkKind.HOMEWORK,
        homework.id,
        homework.session_id,
        homework.title,
        _when(uow, "Homework due", homework.due_at),
        exercises,
    )
    return WorksheetsView(centre_name=uow.centre().name, sheets=[sheet])


def _sheet(
    uow: UnitOfWork,
    student_id: UUID,
    kind: WorkKind,
    work_id: UUID,
    session_id: UUID | None,
    title: str,
    heading: str,
    exercises: list[Exercise],
) -> SheetView:
    code = _codes(uow).mint(uow.actor.centre_id, kind, work_id, student_id)
    worksheet = uow.get_or_start(
        Worksheet,
        sheet_aggregate_id(code),
        lambda: Worksheet(sheet_aggregate_id(code), uow.actor.centre_id),
    )
    worksheet.print_for(
        by=uow.actor,
        code=code,
        student_id=student_id,
        work_kind=kind,
        work_id=work_id,
        session_id=session_id,
        title=title,
    )
    return SheetView(
        code=code,
        short_code=short_code(code),
        student_id=student_id,
        student_name=uow.find(Person, student_id).name,
        work_kind=kind,
        work_id=work_id,
        title=title,
        heading=heading,
        instructions="\n\n".join(e.instructions for e in exercises if e.instructions) or None,
        questions=[
            SheetQuestion(
                prompt=q.prompt, options=list(q.options), points=q.points, question_id=q.question_id
            )
            for exercise in exercises
            for q in exercise.questions
        ],
    )


def _codes(uow: UnitOfWork) -> SheetCodes:
    if uow.services.sheet_codes is None:
        raise PaperNotSetUp("worksheets cannot be printed: no key to sign their codes with")
    return uow.services.sheet_codes


def _when(uow: UnitOfWork, what: str, moment: datetime) -> str:
    local = moment.astimezone(ZoneInfo(uow.centre().time_zone))
    return f"{what} {local:%a %d %b %Y, %H:%M}"


# --- handing in --------------------------------------------------------------------------


def hand_in_paper(command: HandInPaper, uow: UnitOfWork) -> PaperUploadView:
    """File the scan against the work the first readable sheet code of this centre names, or
    keep it as unroutable until someone types the code in."""
    upload = PaperUpload.upload(
        command.upload_id, uow.actor.centre_id, by=uow.actor, pages=command.pages
    )
    uow.add(upload, if_exists="this upload is already handed in")
    reasons = []
    for found in command.codes:
        sheet = _worksheet(uow, found.code)
        if sheet is None:
            reasons.append("its code is not one of this centre's worksheets")
        elif not _may_hand_in_for(uow, sheet.student_id):
            reasons.append("the worksheet is someone else's")
        else:
            _route(uow, upload, sheet, RouteMethod.QR_CODE, found.page)
            return PaperUploadView.of(upload)
    reason = reasons[0] if reasons else "no page has a readable worksheet code"
    upload.cannot_route(by=uow.actor, reason=reason)
    return PaperUploadView.of(upload, reason=reason)


def route_paper(command: RoutePaper, uow: UnitOfWork) -> PaperUploadView:
    """File an upload by the short code printed under the QR code, typed in by a person."""
    upload = uow.find(PaperUpload, command.upload_id)
    if upload.uploaded_by != uow.actor.user_id and uow.actor.role in (Role.STUDENT, Role.PARENT):
        raise Forbidden("only its uploader or the centre's staff file an upload")
    code = parse_short_code(command.short_code)
    sheet = None if code is None else _worksheet(uow, code)
    if sheet is None:
        raise InvalidValue("no worksheet of this centre has this code", field="short_code")
    if not _may_hand_in_for(uow, sheet.student_id):
        raise Forbidden("the worksheet is someone else's")
    _route(uow, upload, sheet, RouteMethod.SHORT_CODE, None)
    return PaperUploadView.of(upload)


def _worksheet(uow: UnitOfWork, code: str) -> Worksheet | None:
    """The printed worksheet of this centre the code names; a forged code names none."""
    try:
        worksheet = uow.get(Worksheet, sheet_aggregate_id(code))
    except NotFound:
        return None
    return worksheet if worksheet.centre_id == uow.actor.centre_id else None


def _may_hand_in_for(uow: UnitOfWork, student_id: UUID) -> bool:
    """A STUDENT hands in their own sheets, a PARENT their child's, staff anyone's."""
    actor = uow.actor
    if actor.role is Role.STUDENT:
        return actor.user_id == student_id
    if actor.role is Role.PARENT:
        return uow.find(Person, student_id).guardian_id == actor.user_id
    return True


def _route(
    uow: UnitOfWork,
    upload: PaperUpload,
    sheet: Worksheet,
    method: RouteMethod,
    page: int | None,
) -> None:
    """File the upload and hand the work in with it."""
    if sheet.work_kind is WorkKind.EXERCISE:
        assert sheet.session_id is not None
        session = uow.get(Session, sheet.session_id)
        held = seat(uow, session, sheet.student_id)
        held.hand_in_on_paper(sheet.work_id, upload.id, by=uow.actor)
        teacher_id, max_score = session.tutor_id, held.work[sheet.work_id].max_score
    else:
        homework = uow.get(Homework, sheet.work_id)
        homework.hand_in_on_paper(upload.id, by=uow.actor)
        teacher_id, max_score = homework.teacher_id, homework.max_score
    upload.route_to(
        sheet, by=uow.actor, method=method, page=page, teacher_id=teacher_id, max_score=max_score
    )


# --- marking -----------------------------------------------------------------------------


def _marked(uow: UnitOfWork, upload_id: UUID) -> PaperUpload:
    """An upload of the centre that the actor may mark: a TEACHER only work they mark."""
    upload = uow.find(PaperUpload, upload_id)
    if upload.teacher_id is not None and uow.actor.is_teacher_other_than(upload.teacher_id):
        raise Forbidden("a TEACHER marks only the work they mark")
    return upload


def annotate_paper(command: AnnotatePaper, uow: UnitOfWork) -> AnnotationView:
    upload = _marked(uow, command.upload_id)
    annotation_id = upload.annotate(by=uow.actor, page=command.page, mark=command.mark)
    return AnnotationView(upload_id=upload.id, annotation_id=annotation_id, page=command.page)


def erase_annotation(command: EraseAnnotation, uow: UnitOfWork) -> PaperUploadView:
    upload = _marked(uow, command.upload_id)
    upload.erase(command.annotation_id, by=uow.actor)
    return PaperUploadView.of(upload)


def attach_voice_comment(command: AttachVoiceComment, uow: UnitOfWork) -> PaperUploadView:
    upload = _marked(uow, command.upload_id)
    upload.attach_voice_comment(
        by=uow.actor,
        blob_key=command.blob_key,
        content_type=command.content_type,
        seconds=command.seconds,
    )
    return PaperUploadView.of(upload)


def score_paper(command: ScorePaper, uow: UnitOfWork) -> PaperUploadView:
    upload = _marked(uow, command.upload_id)
    upload.score_against(command.rubric, by=uow.actor)
    return PaperUploadView.of(upload)


def hand_back_paper(command: HandBackPaper, uow: UnitOfWork) -> PaperUploadView:
    """The marked pages and the score go back to the student; the work is graded with the
    score, which earns its XP as work marked online does."""
    upload = _marked(uow, command.upload_id)
    upload.hand_back(by=uow.actor, feedback=command.feedback)
    _grade_work(uow, upload, command.feedback)
    return PaperUploadView.of(upload)


def _grade_work(uow: UnitOfWork, upload: PaperUpload, feedback: str | None) -> None:
    """Grade the work the upload carries with its score, if the work waits for a grade."""
    assert upload.work_id is not None and upload.score is not None
    if upload.work_kind is WorkKind.EXERCISE:
        assert upload.session_id is not None and upload.student_id is not None
        held = seat(uow, uow.get(Session, upload.session_id), upload.student_id)
        if held.work[upload.work_id].status is WorkStatus.SUBMITTED:
            held.grade_exercise(upload.work_id, by=uow.actor, score=upload.score, feedback=feedback)
    else:
        homework = uow.get(Homework, upload.work_id)
        if homework.status in HANDED_IN:
            homework.grade(by=uow.actor, score=upload.score, feedback=feedback)
