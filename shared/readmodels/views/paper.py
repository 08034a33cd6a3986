"""Paper work as people see it: an upload with its pages and marking (now, or replayed as it
was at a moment), a page's ink, the centre's uploads and a student's paper work.

Page images and voice comments stay in the blob store; a view links them with signed,
short-lived URLs made when it is read (``urls``), never kept in a document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from shared.events.paper import Mark
from shared.readmodels.documents import (
    Instant,
    JsonObject,
    Paper,
    PaperAnnotation,
    PaperStatus,
    PaperSummary,
    as_json,
)
from shared.readmodels.views.common import Names

UPLOADS_PATH = "/api/v1/paper/uploads"
"""Where the query API serves uploads (the marked pages' links)."""

BlobUrls = Callable[[str], str]
"""A signed, short-lived URL to a blob, by its key."""


@dataclass(frozen=True)
class AsOf:
    """A moment of the marking: a time, a position (notification id), or both (the earlier
    of the two wins); neither is now."""

    at: Instant | None = None
    position: int | None = None

    def reached(self, at: Instant, position: int) -> bool:
        """Whether something recorded at ``at`` and ``position`` had happened by then."""
        return (self.at is None or at <= self.at) and (
            self.position is None or position <= self.position
        )

    @property
    def now(self) -> bool:
        return self.at is None and self.position is None


NOW = AsOf()


def as_of(paper: Paper, moment: AsOf) -> Paper | None:
    """The upload as it was at ``moment``: the ink put on by then (erasures after it undone),
    the voice comment and score of then, routed and handed back only if it was by then;
    ``None`` if it was not uploaded yet."""
    if moment.now:
        return paper
    if not moment.reached(paper.uploaded_at, paper.uploaded_position):
        return None
    then = msgspec.structs.replace(paper)
    routing = paper.routing
    if routing is not None and not moment.reached(routing.routed_at, routing.routed_position):
        routing = None
    annotations: list[PaperAnnotation] = []
    for a in paper.annotations:
        if not moment.reached(a.at, a.position):
            continue
        if a.erased_at and not moment.reached(a.erased_at, a.erased_position or 0):
            a = msgspec.structs.replace(a, erased_at=msgspec.UNSET, erased_position=msgspec.UNSET)
        annotations.append(a)
    handed_back = paper.handed_back_at is not None and moment.reached(
        paper.handed_back_at, paper.handed_back_position or 0
    )
    then.routing = routing
    then.annotations = annotations
    then.voice_comments = [v for v in paper.voice_comments if moment.reached(v.at, v.position)]
    then.scores = [s for s in paper.scores if moment.reached(s.at, s.position)]
    if not handed_back:
        then.handed_back_at = then.handed_back_by = then.handed_back_position = None
        then.feedback = then.score = then.max_score = None
    if routing is None:
        then.status = PaperStatus.UNROUTABLE
    elif handed_back:
        then.status = PaperStatus.HANDED_BACK
    elif annotations or then.voice_comments or then.scores:
        then.status = PaperStatus.MARKING
    else:
        then.status = PaperStatus.AWAITING_MARKING
    return then


def marks_on(paper: Paper, page: int) -> list[Mark]:
    """The ink on a page (not erased), in the order it was put on."""
    return [a.mark for a in paper.annotations if a.page == page and not a.erased_at]


def _replay(paper: Paper) -> list[JsonObject]:
    """Every stroke, stamp, note and erasure in the order they happened."""
    steps: list[JsonObject] = []
    for a in paper.annotations:
        steps.append(
            {
                "position": a.position,
                "at": a.at,
                "action": "ANNOTATED",
                "annotationId": a.annotation_id,
                "page": a.page,
            }
        )
        if a.erased_at and a.erased_position:
            steps.append(
                {
                    "position": a.erased_position,
                    "at": a.erased_at,
                    "action": "ERASED",
                    "annotationId": a.annotation_id,
                    "page": a.page,
                }
            )
    steps.sort(key=lambda s: (s["position"], s["action"] == "ERASED"))
    return steps


def paper_view(
    paper: Paper,
    names: Names,
    urls: BlobUrls,
    *,
    marking_shown: bool,
    moment: AsOf = NOW,
    staff: bool,
) -> JsonObject:
    """One upload. ``marking_shown``: its ink, voice comment, score and feedback (students and
    parents: once it is handed back); ``staff``: why it could not be routed."""
    base = f"{UPLOADS_PATH}/{paper.upload_id}/pages"
    routing = paper.routing
    voice = paper.voice_comments[-1] if paper.voice_comments and marking_shown else None
    score = paper.scores[-1] if paper.scores and marking_shown else None
    suffix = f"?at={moment.at}" if moment.at else ""
    if moment.position is not None:
        suffix += ("&" if suffix else "?") + f"atPosition={moment.position}"
    return {
        "uploadId": paper.upload_id,
        "status": paper.status,
        "uploadedBy": paper.uploaded_by,
        "uploadedByRole": paper.uploaded_by_role,
        "uploadedByName": names.get(paper.uploaded_by),
        "uploadedAt": paper.uploaded_at,
        "unroutableReason": paper.unroutable_reason if staff else None,
        "routing": None
        if routing is None
        else {
            **as_json(routing),
            "studentName": names.get(routing.student_id),
            "teacherName": names.get(routing.teacher_id),
        },
        "pages": [
            {
                "page": i,
                "contentType": p.content_type,
                "width": p.width,
                "height": p.height,
                "size": p.size,
                "url": urls(p.blob_key),
                "markedUrl": f"{base}/{i}/marked.png{suffix}",
            }
            for i, p in enumerate(paper.pages)
        ],
        "annotations": [
            {k: v for k, v in as_json(a).items() if k not in ("erasedAt", "erasedPosition")}
            for a in paper.annotations
            if not a.erased_at
        ]
        if marking_shown
        else [],
        "replay": _replay(paper) if marking_shown else [],
        "voiceComment": None
        if voice is None
        else {
            "contentType": voice.content_type,
            "seconds": voice.seconds,
            "at": voice.at,
            "position": voice.position,
            "url": urls(voice.blob_key),
        },
        "score": None
        if score is None
        else {
            "rubric": msgspec.to_builtins(score.rubric),
            "score": score.score,
            "maxScore": score.max_score,
            "at": score.at,
            "position": score.position,
        },
        "feedback": paper.feedback if marking_shown else None,
        "handedBackAt": paper.handed_back_at,
        "asOf": None if moment.now else {"at": moment.at, "position": moment.position},
    }


def paper_row(paper: Paper, names: Names, *, staff: bool) -> JsonObject:
    """An upload in a list: who handed it in, when, where it was filed and how far its marking
    got."""
    routing = paper.routing
    return {
        "uploadId": paper.upload_id,
        "status": paper.status,
        "uploadedBy": paper.uploaded_by,
        "uploadedByRole": paper.uploaded_by_role,
        "uploadedByName": names.get(paper.uploaded_by),
        "uploadedAt": paper.uploaded_at,
        "pages": len(paper.pages),
        "unroutableReason": paper.unroutable_reason if staff else None,
        "studentId": routing.student_id if routing else None,
        "studentName": names.get(routing.student_id) if routing else None,
        "workKind": routing.work_kind if routing else None,
        "workId": routing.work_id if routing else None,
        "title": routing.title if routing else None,
        "teacherId": routing.teacher_id if routing else None,
        "handedBackAt": paper.handed_back_at,
    }


def summary_rows(summaries: Iterable[PaperSummary], names: Names) -> list[JsonObject]:
    """A student's paper work (or a tutor's queue), oldest upload first."""
    rows = [
        {
            **as_json(s),
            "studentName": names.get(s.student_id),
            "teacherName": names.get(s.teacher_id),
        }
        for s in summaries
    ]
    rows.sort(key=lambda r: (r["uploadedAt"], r["uploadId"]))
    return rows
