"""The ``paper`` document, and what the student's and the marking tutor's documents hold about
the upload (all events of one ``PaperUpload`` aggregate, so always in order).

The student's document keeps every upload filed against their work; the tutor's keeps those
they mark until they are handed back (the marking queue of My Day). The work itself is handed
in and graded by its own events (``ExerciseSubmitted``/``HomeworkSubmitted`` naming the upload,
then ``ExerciseGraded``/``HomeworkGraded``), projected with the rest of the work.
"""

from __future__ import annotations

from msgspec import UNSET

from shared import events as ev
from shared.readmodels.documents import (
    PAPER,
    TUTOR,
    Paper,
    PaperAnnotation,
    PaperPage,
    PaperRouting,
    PaperScore,
    PaperStatus,
    PaperVoiceComment,
    summary_of,
)
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.projector.student import put_student, student_doc
from shared.readmodels.projector.tutor import tutor_doc
from shared.readmodels.times import iso


@projects(ev.PaperUploaded)
def paper_uploaded(docs: Batch, e: ev.PaperUploaded) -> None:
    paper = Paper(
        upload_id=str(e.aggregate_id),
        centre_id=e.centre_id,
        uploaded_by=str(e.actor_id),
        uploaded_by_role=e.actor_role,
        uploaded_at=iso(e.occurred_at),
        uploaded_position=docs.position,
        pages=[
            PaperPage(
                blob_key=p.blob_key,
                content_type=p.content_type,
                width=p.width,
                height=p.height,
                size=p.size,
            )
            for p in e.pages
        ],
    )
    docs.put(PAPER, paper.upload_id, e.centre_id, paper)


def _paper(docs: Batch, e: ev.Event) -> Paper:
    found = docs.get(PAPER, str(e.aggregate_id))
    assert found is not None  # uploaded first: same aggregate, applied in order
    return found


def _save(docs: Batch, e: ev.Event, paper: Paper, before: PaperRouting | None) -> None:
    """Write the upload, and what the student's and the tutor's documents hold about it (taken
    from the documents it was filed against before, if it was filed elsewhere)."""
    key = paper.upload_id
    docs.put(PAPER, key, e.centre_id, paper)
    summary = summary_of(paper)
    if before is not None and (summary is None or summary.student_id != before.student_id):
        student = student_doc(docs, e.centre_id, before.student_id)
        if student.paper:
            student.paper.pop(key, None)
            student.paper = student.paper or UNSET
        put_student(docs, student)
    if before is not None and (summary is None or summary.teacher_id != before.teacher_id):
        _unqueue(docs, e.centre_id, before.teacher_id, key)
    if summary is None:
        return
    student = student_doc(docs, e.centre_id, summary.student_id)
    student.paper = {**(student.paper or {}), key: summary}
    put_student(docs, student)
    if summary.status is PaperStatus.HANDED_BACK:
        _unqueue(docs, e.centre_id, summary.teacher_id, key)
    else:
        tutor = tutor_doc(docs, e.centre_id, summary.teacher_id)
        tutor.paper = {**(tutor.paper or {}), key: summary}
        docs.put(TUTOR, summary.teacher_id, e.centre_id, tutor)


def _unqueue(docs: Batch, centre_id: str, teacher_id: str, key: str) -> None:
    tutor = tutor_doc(docs, centre_id, teacher_id)
    if tutor.paper and key in tutor.paper:
        tutor.paper.pop(key)
        tutor.paper = tutor.paper or UNSET
        docs.put(TUTOR, teacher_id, centre_id, tutor)


@projects(ev.PaperRouted, ev.PaperUnroutable)
def paper_filed(docs: Batch, e: ev.PaperRouted | ev.PaperUnroutable) -> None:
    """Filed against a student's work (found in a QR code or typed in), or not (yet)."""
    paper = _paper(docs, e)
    before = paper.routing
    at = iso(e.occurred_at)
    if isinstance(e, ev.PaperUnroutable):
        paper.unroutable_reason, paper.unroutable_at = e.reason, at
        if paper.routing is None:
            paper.status = PaperStatus.UNROUTABLE
    else:
        paper.routing = PaperRouting(
            method=e.method,
            student_id=str(e.student_id),
            work_kind=e.work_kind,
            work_id=str(e.work_id),
            session_id=str(e.session_id) if e.session_id else None,
            teacher_id=str(e.teacher_id),
            title=e.title,
            max_score=e.max_score,
            page=e.page,
            routed_at=at,
            routed_by=str(e.actor_id),
            routed_position=docs.position,
        )
        if paper.status is PaperStatus.UNROUTABLE:
            paper.status = _marking_status(paper)
    _save(docs, e, paper, before)


def _marking_status(paper: Paper) -> PaperStatus:
    """The status of a routed upload not handed back: MARKING once the tutor did anything."""
    if paper.handed_back_at is not None:
        return PaperStatus.HANDED_BACK
    begun = paper.annotations or paper.voice_comments or paper.scores
    return PaperStatus.MARKING if begun else PaperStatus.AWAITING_MARKING


Marked = (
    ev.PaperAnnotated | ev.PaperAnnotationErased | ev.PaperVoiceCommentAttached | ev.PaperScored
)


@projects(ev.PaperAnnotated, ev.PaperAnnotationErased, ev.PaperVoiceCommentAttached, ev.PaperScored)
def paper_marked(docs: Batch, e: Marked) -> None:
    """Ink, an erasure, a voice comment or a score: each kept in order with its time and
    position, so the marking replays as it happened."""
    paper = _paper(docs, e)
    at, position, by = iso(e.occurred_at), docs.position, str(e.actor_id)
    if isinstance(e, ev.PaperAnnotated):
        paper.annotations.append(
            PaperAnnotation(
                annotation_id=str(e.annotation_id),
                page=e.page,
                mark=e.mark,
                at=at,
                position=position,
                by=by,
            )
        )
    elif isinstance(e, ev.PaperAnnotationErased):
        for annotation in paper.annotations:
            if annotation.annotation_id == str(e.annotation_id) and not annotation.erased_at:
                annotation.erased_at, annotation.erased_position = at, position
    elif isinstance(e, ev.PaperVoiceCommentAttached):
        paper.voice_comments.append(
            PaperVoiceComment(
                blob_key=e.blob_key,
                content_type=e.content_type,
                seconds=e.seconds,
                at=at,
                position=position,
            )
        )
    else:
        paper.scores.append(
            PaperScore(
                rubric=list(e.rubric),
                score=e.score,
                max_score=e.max_score,
                at=at,
                position=position,
                by=by,
            )
        )
    if paper.routing is not None:
        paper.status = _marking_status(paper)
    _save(docs, e, paper, paper.routing)


@projects(ev.PaperHandedBack)
def paper_handed_back(docs: Batch, e: ev.PaperHandedBack) -> None:
    """The marking is finished: out of the tutor's queue, shown to the student and parents."""
    paper = _paper(docs, e)
    before = paper.routing
    paper.status = PaperStatus.HANDED_BACK
    paper.feedback, paper.score, paper.max_score = e.feedback, e.score, e.max_score
    paper.handed_back_at, paper.handed_back_by = iso(e.occurred_at), str(e.actor_id)
    paper.handed_back_position = docs.position
    _save(docs, e, paper, before)
