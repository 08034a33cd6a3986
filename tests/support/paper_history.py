"""The demo centre's day followed by paper work on it, as (event, notification id): a
student's exercise scanned, routed by its QR code, marked in ink (one stamp erased), scored and
handed back; a parent's scan of homework that could not be routed until its code was typed in;
and a scan nobody could route."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from shared import events as ev
from shared.events.paper import Point, RubricScore, ScannedPage, Stamp, StampKind, Stroke, TextNote
from shared.tenancy import Actor, Role
from tests.readside import demo_events

CENTRE = "main-campus"
PAGE = ScannedPage(
    blob_key=f"{CENTRE}/{'a' * 64}.jpg", content_type="image/jpeg", width=1240, height=1754, size=1
)


@dataclass
class Paper:
    """The demo history with paper work after it, and the ids the tests ask about."""

    history: list[tuple[ev.Event, int]] = field(default_factory=list)
    people: dict[str, Actor] = field(default_factory=dict)
    marked: UUID = field(default_factory=uuid4)
    typed_in: UUID = field(default_factory=uuid4)
    lost: UUID = field(default_factory=uuid4)
    session_id: UUID | None = None
    work_id: UUID | None = None
    homework_id: UUID | None = None
    tutor_id: UUID | None = None
    stamp: UUID = field(default_factory=uuid4)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(minutes=5))

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def position(self, event_type: type[ev.Event], upload: UUID | None = None) -> int:
        return next(
            n
            for e, n in self.history
            if isinstance(e, event_type) and (upload is None or e.aggregate_id == upload)
        )


def _versions(history: list[tuple[ev.Event, int]]) -> dict[UUID, int]:
    versions: dict[UUID, int] = {}
    for e, _ in history:
        versions[e.aggregate_id] = max(versions.get(e.aggregate_id, 0), e.aggregate_version)
    return versions


def paper_day(page: ScannedPage = PAGE) -> Paper:
    run = Paper(history=list(demo_events()))
    people = {
        e.name: Actor(user_id=e.aggregate_id, role=e.role, centre_id=e.centre_id)
        for e, _ in run.history
        if isinstance(e, ev.PersonRegistered)
    }
    run.people = people
    jane, robert, alex = people["Jane Johnson"], people["Robert Johnson"], people["Alex Thompson"]
    submitted = {e.work_id for e, _ in run.history if isinstance(e, ev.ExerciseSubmitted)}
    assigned = next(
        e
        for e, _ in run.history
        if isinstance(e, ev.ExerciseAssigned)
        and e.student_id == jane.user_id
        and e.work_id not in submitted
    )
    session = next(
        e
        for e, _ in run.history
        if isinstance(e, ev.SessionScheduled) and e.session_id == assigned.session_id
    )
    homework = next(
        e
        for e, _ in run.history
        if isinstance(e, ev.HomeworkAssigned) and e.student_id == jane.user_id
    )
    run.session_id, run.work_id, run.homework_id = (
        session.session_id,
        assigned.work_id,
        homework.aggregate_id,
    )
    run.tutor_id = session.tutor_id
    versions = _versions(run.history)
    position = max(n for _, n in run.history)

    def record(aggregate: UUID, actor: Actor, make: type[ev.Event], **values: Any) -> None:
        nonlocal position
        versions[aggregate] = versions.get(aggregate, 0) + 1
        position += 1
        event = make(
            centre_id=CENTRE,
            aggregate_id=aggregate,
            aggregate_version=versions[aggregate],
            occurred_at=run.tick(),
            actor_id=actor.user_id,
            actor_role=actor.role,
            **values,
        )
        # As the event store gives it back (numbers of the contract's types).
        run.history.append((ev.decode(msgspec.json.encode(event)), position))

    tutor = Actor(user_id=session.tutor_id, role=Role.TEACHER, centre_id=CENTRE)
    seat = assigned.aggregate_id
    # Jane's exercise, photographed by Jane: routed by its QR code and handed in at once.
    record(run.marked, jane, ev.PaperUploaded, pages=(page, page))
    record(
        run.marked,
        jane,
        ev.PaperRouted,
        code="A" * 16,
        method=ev.RouteMethod.QR_CODE,
        student_id=jane.user_id,
        work_kind=ev.WorkKind.EXERCISE,
        work_id=assigned.work_id,
        session_id=assigned.session_id,
        teacher_id=session.tutor_id,
        title=assigned.title,
        max_score=assigned.max_score,
        page=0,
    )
    record(
        seat,
        jane,
        ev.ExerciseSubmitted,
        session_id=assigned.session_id,
        student_id=jane.user_id,
        work_id=assigned.work_id,
        answers={},
        status=ev.WorkStatus.SUBMITTED,
        max_score=assigned.max_score,
        paper_upload_id=run.marked,
    )
    # A parent's scan of Jane's homework: no readable code, then typed in.
    record(run.typed_in, robert, ev.PaperUploaded, pages=(page,))
    record(run.typed_in, robert, ev.PaperUnroutable, reason="no sheet code found")
    record(
        run.typed_in,
        robert,
        ev.PaperRouted,
        code="B" * 16,
        method=ev.RouteMethod.SHORT_CODE,
        student_id=jane.user_id,
        work_kind=ev.WorkKind.HOMEWORK,
        work_id=homework.aggregate_id,
        teacher_id=homework.teacher_id,
        title=homework.title,
        max_score=homework.max_score,
    )
    record(
        homework.aggregate_id,
        robert,
        ev.HomeworkSubmitted,
        student_id=jane.user_id,
        teacher_id=homework.teacher_id,
        answers={},
        on_time=True,
        status=ev.HomeworkStatus.SUBMITTED,
        max_score=homework.max_score,
        paper_upload_id=run.typed_in,
    )
    # Alex's photo of something else: never routed.
    record(run.lost, alex, ev.PaperUploaded, pages=(page,))
    record(run.lost, alex, ev.PaperUnroutable, reason="no sheet code found")
    # The tutor marks Jane's exercise.
    record(
        run.marked,
        tutor,
        ev.PaperAnnotated,
        annotation_id=uuid4(),
        page=0,
        mark=Stroke(points=(Point(0.1, 0.1), Point(0.2, 0.3))),
    )
    record(
        run.marked,
        tutor,
        ev.PaperAnnotated,
        annotation_id=run.stamp,
        page=0,
        mark=Stamp(kind=StampKind.CROSS, at=Point(0.5, 0.5)),
    )
    record(
        run.marked,
        tutor,
        ev.PaperAnnotated,
        annotation_id=uuid4(),
        page=1,
        mark=TextNote(at=Point(0.3, 0.8), text="Well set out"),
    )
    record(run.marked, tutor, ev.PaperAnnotationErased, annotation_id=run.stamp)
    record(
        run.marked,
        tutor,
        ev.PaperVoiceCommentAttached,
        blob_key=f"{CENTRE}/{'b' * 64}.ogg",
        content_type="audio/ogg",
        seconds=42.5,
    )
    rubric = (RubricScore(criterion="Method", points=4.0, max_points=5),)
    record(run.marked, tutor, ev.PaperScored, rubric=rubric, score=8.0, max_score=10)
    record(
        run.marked,
        tutor,
        ev.PaperHandedBack,
        student_id=jane.user_id,
        work_kind=ev.WorkKind.EXERCISE,
        work_id=assigned.work_id,
        session_id=assigned.session_id,
        score=8,
        max_score=10,
        feedback="Good work",
    )
    record(
        seat,
        tutor,
        ev.ExerciseGraded,
        session_id=assigned.session_id,
        student_id=jane.user_id,
        work_id=assigned.work_id,
        score=8,
        max_score=10,
        feedback="Good work",
        xp_awarded=30,
    )
    return run
