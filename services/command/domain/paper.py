"""Paper work: the worksheet a sheet code names, and a scan of it from upload to hand-back."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from uuid import UUID, uuid5

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    NotFound,
    applies,
)
from services.command.domain.exercise import MAX_FEEDBACK
from shared.events.paper import (
    MAX_NOTE_TEXT,
    MAX_PAGES,
    MAX_RUBRIC_CRITERIA,
    VOICE_COMMENT_SECONDS,
    Mark,
    PaperAnnotated,
    PaperAnnotationErased,
    PaperHandedBack,
    PaperRouted,
    PaperScored,
    PaperUnroutable,
    PaperUploaded,
    PaperVoiceCommentAttached,
    RouteMethod,
    RubricScore,
    ScannedPage,
    TextNote,
    WorkKind,
    WorksheetPrinted,
)
from shared.tenancy import Actor


class Worksheet(Aggregate):
    """The sheet printed for one student's piece of work; its id is the sheet code's."""

    code: str
    student_id: UUID
    work_kind: WorkKind
    work_id: UUID
    session_id: UUID | None
    title: str

    @property
    def printed(self) -> bool:
        return self.version > 0

    def print_for(
        self,
        *,
        by: Actor,
        code: str,
        student_id: UUID,
        work_kind: WorkKind,
        work_id: UUID,
        session_id: UUID | None,
        title: str,
    ) -> bool:
        """Register the sheet the first time it is printed; ``False`` when it already was."""
        if self.printed:
            return False
        self._record(
            WorksheetPrinted,
            by,
            code=code,
            student_id=student_id,
            work_kind=work_kind,
            work_id=work_id,
            session_id=session_id,
            title=title,
        )
        return True

    def _blank(self) -> None:
        self.session_id = None

    @applies(WorksheetPrinted)
    def _printed(self, event: WorksheetPrinted) -> None:
        self.code, self.student_id = event.code, event.student_id
        self.work_kind, self.work_id = event.work_kind, event.work_id
        self.session_id, self.title = event.session_id, event.title


class UploadStatus(StrEnum):
    UPLOADED = "UPLOADED"
    UNROUTABLE = "UNROUTABLE"
    ROUTED = "ROUTED"
    """Filed against its work, waiting to be marked (or being marked)."""
    HANDED_BACK = "HANDED_BACK"


class AnnotationNotFound(NotFound):
    pass


class PaperUpload(Aggregate):
    """Photos or a PDF of paper work, from the moment they arrive to the marked hand-back."""

    status: UploadStatus
    pages: tuple[ScannedPage, ...]
    uploaded_by: UUID
    student_id: UUID | None
    work_kind: WorkKind | None
    work_id: UUID | None
    session_id: UUID | None
    teacher_id: UUID | None
    max_score: int
    annotations: set[UUID]
    score: float | None

    @classmethod
    def upload(
        cls, upload_id: UUID, centre_id: str, *, by: Actor, pages: Sequence[ScannedPage]
    ) -> PaperUpload:
        if not 1 <= len(pages) <= MAX_PAGES:
            raise InvalidValue(f"an upload has 1 to {MAX_PAGES} pages", field="files")
        upload = cls(upload_id, centre_id)
        upload._record(PaperUploaded, by, pages=tuple(pages))
        return upload

    def route_to(
        self,
        sheet: Worksheet,
        *,
        by: Actor,
        method: RouteMethod,
        page: int | None,
        teacher_id: UUID,
        max_score: int,
    ) -> None:
        if self.status not in (UploadStatus.UPLOADED, UploadStatus.UNROUTABLE):
            raise InvalidTransition(f"the upload is already {self.status}")
        self._record(
            PaperRouted,
            by,
            code=sheet.code,
            method=method,
            student_id=sheet.student_id,
            work_kind=sheet.work_kind,
            work_id=sheet.work_id,
            session_id=sheet.session_id,
            teacher_id=teacher_id,
            title=sheet.title,
            max_score=max_score,
            page=page,
        )

    def cannot_route(self, *, by: Actor, reason: str) -> None:
        if self.status is not UploadStatus.UPLOADED:
            raise InvalidTransition(f"the upload is already {self.status}")
        self._record(PaperUnroutable, by, reason=reason)

    def annotate(self, *, by: Actor, page: int, mark: Mark) -> UUID:
        self._being_marked("annotate")
        self._page(page)
        if isinstance(mark, TextNote) and len(mark.text) > MAX_NOTE_TEXT:
            raise InvalidValue(
                f"a note on a page is at most {MAX_NOTE_TEXT} characters", field="mark.text"
            )
        annotation_id = uuid5(self.id, f"annotation:{self.version + 1}")
        self._record(PaperAnnotated, by, annotation_id=annotation_id, page=page, mark=mark)
        return annotation_id

    def erase(self, annotation_id: UUID, *, by: Actor) -> None:
        self._being_marked("erase ink on")
        if annotation_id not in self.annotations:
            raise AnnotationNotFound("no such annotation on this upload")
        self._record(PaperAnnotationErased, by, annotation_id=annotation_id)

    def attach_voice_comment(
        self, *, by: Actor, blob_key: str, content_type: str, seconds: float
    ) -> None:
        self._being_marked("comment on")
        values.finite(seconds, "seconds", 0, VOICE_COMMENT_SECONDS)
        self._record(
            PaperVoiceCommentAttached,
            by,
            blob_key=blob_key,
            content_type=content_type,
            seconds=round(seconds, 2),
        )

    def score_against(self, rubric: Sequence[RubricScore], *, by: Actor) -> float:
        """Score each criterion of a rubric; the total on the work's scale is the score."""
        self._being_marked("score")
        if not 1 <= len(rubric) <= MAX_RUBRIC_CRITERIA:
            raise InvalidValue(f"a rubric has 1 to {MAX_RUBRIC_CRITERIA} criteria", field="rubric")
        seen: set[str] = set()
        for index, line in enumerate(rubric):
            criterion = values.text(
                line.criterion, f"rubric[{index}].criterion", 200, what="criterion"
            )
            if criterion.casefold() in seen:
                raise InvalidValue("criteria must differ", field=f"rubric[{index}].criterion")
            seen.add(criterion.casefold())
            values.finite(line.points, f"rubric[{index}].points", 0, line.max_points)
        earned = sum(line.points for line in rubric)
        available = sum(line.max_points for line in rubric)
        score = round(earned / available * self.max_score, 2)
        self._record(PaperScored, by, rubric=tuple(rubric), score=score, max_score=self.max_score)
        return score

    def hand_back(self, *, by: Actor, feedback: str | None) -> None:
        self._being_marked("hand back")
        if self.score is None:
            raise InvalidTransition("score the work against a rubric before handing it back")
        assert self.student_id and self.work_kind and self.work_id
        self._record(
            PaperHandedBack,
            by,
            student_id=self.student_id,
            work_kind=self.work_kind,
            work_id=self.work_id,
            session_id=self.session_id,
            score=self.score,
            max_score=self.max_score,
            feedback=values.free_text(feedback, "feedback", MAX_FEEDBACK),
        )

    def _being_marked(self, verb: str) -> None:
        if self.status is not UploadStatus.ROUTED:
            raise InvalidTransition(
                f"only an upload filed against its work is marked; cannot {verb} one that "
                f"is {self.status}"
            )

    def _page(self, page: int) -> None:
        if not 0 <= page < len(self.pages):
            raise InvalidValue(f"the upload has pages 0 to {len(self.pages) - 1}", field="page")

    def _blank(self) -> None:
        self.status = UploadStatus.UPLOADED
        self.pages = ()
        self.student_id = self.work_kind = self.work_id = None
        self.session_id = self.teacher_id = None
        self.max_score = 0
        self.annotations = set()
        self.score = None

    @applies(PaperUploaded)
    def _uploaded(self, event: PaperUploaded) -> None:
        self.pages, self.uploaded_by = event.pages, event.actor_id

    @applies(PaperRouted)
    def _routed(self, event: PaperRouted) -> None:
        self.status = UploadStatus.ROUTED
        self.student_id, self.work_kind, self.work_id = (
            event.student_id,
            event.work_kind,
            event.work_id,
        )
        self.session_id, self.max_score = event.session_id, event.max_score
        self.teacher_id = event.teacher_id

    @applies(PaperUnroutable)
    def _unroutable(self, event: PaperUnroutable) -> None:
        self.status = UploadStatus.UNROUTABLE

    @applies(PaperAnnotated)
    def _annotated(self, event: PaperAnnotated) -> None:
        self.annotations.add(event.annotation_id)

    @applies(PaperAnnotationErased)
    def _erased(self, event: PaperAnnotationErased) -> None:
        self.annotations.discard(event.annotation_id)

    @applies(PaperVoiceCommentAttached)
    def _voice(self, event: PaperVoiceCommentAttached) -> None:
        pass

    @applies(PaperScored)
    def _scored(self, event: PaperScored) -> None:
        self.score = event.score

    @applies(PaperHandedBack)
    def _handed_back(self, event: PaperHandedBack) -> None:
        self.status = UploadStatus.HANDED_BACK
