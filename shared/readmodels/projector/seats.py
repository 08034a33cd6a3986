"""A student's row in the ``session`` document: attendance, help requests, presence, teaching
and exercise work (events of the student's seat, applied in order)."""

from __future__ import annotations

from uuid import UUID

from shared import events as ev
from shared.readmodels.documents import HelpRequest, Presence, Session, Teaching, Work
from shared.readmodels.ids import id_text
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.indexes import index_help_request
from shared.readmodels.projector.registry import projects
from shared.readmodels.projector.session import seat, update_session
from shared.readmodels.times import iso


@projects(ev.AttendanceMarked)
def attendance_marked(docs: Batch, e: ev.AttendanceMarked) -> None:
    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        row.attendance, row.attendance_notes = e.status, e.notes
        row.marked_at, row.marked_by = iso(e.occurred_at), id_text(e.actor_id)

    update_session(docs, e, change)


@projects(ev.StudentPresenceRecorded)
def presence_recorded(docs: Batch, e: ev.StudentPresenceRecorded) -> None:
    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        at = iso(e.occurred_at)
        present = e.kind not in (ev.PresenceKind.LEAVE, ev.PresenceKind.DISCONNECT)
        presence = row.presence or Presence(
            joined_at=at,
            last=e.kind,
            last_seen_at=at,
            active_seconds=e.active_seconds,
            present=present,
        )
        presence.last, presence.last_seen_at = e.kind, at
        presence.active_seconds, presence.present = e.active_seconds, present
        if e.kind is ev.PresenceKind.LEAVE:
            presence.left_at = at
        if e.kind in (ev.PresenceKind.JOIN, ev.PresenceKind.RECONNECT):
            presence.last_joined_at = at
        row.presence = presence

    update_session(docs, e, change)


@projects(ev.TeachingModeSwitched)
def teaching_switched(docs: Batch, e: ev.TeachingModeSwitched) -> None:
    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        teaching = e.mode is ev.TeachingMode.TEACH
        row.teaching = Teaching(
            mode=e.mode,
            teaching_seconds=e.teaching_seconds,
            since=iso(e.occurred_at) if teaching else None,
        )
        row.last_attended_at = iso(e.occurred_at)

    update_session(docs, e, change)


# --- help requests ---------------------------------------------------------------------------


@projects(ev.HelpRequestRaised)
def help_requested(docs: Batch, e: ev.HelpRequestRaised) -> None:
    request = HelpRequest(
        help_request_id=id_text(e.help_request_id),
        session_id=id_text(e.session_id),
        student_id=id_text(e.student_id),
        priority=e.priority,
        status=ev.HelpRequestStatus.PENDING,
        raised_at=iso(e.occurred_at),
        sla_due_at=iso(e.sla_due_at),
        exercise_id=e.exercise_id,
        message=e.message,
    )

    def change(session: Session) -> None:
        seat(session, id_text(e.student_id)).help_requests[request.help_request_id] = request

    session = update_session(docs, e, change)
    index_help_request(docs, session, id_text(e.student_id), request.help_request_id)


HelpMoved = (
    ev.HelpRequestAcknowledged
    | ev.HelpRequestStarted
    | ev.HelpRequestResolved
    | ev.HelpRequestCancelled
    | ev.HelpRequestClosed
)


@projects(
    ev.HelpRequestAcknowledged,
    ev.HelpRequestStarted,
    ev.HelpRequestResolved,
    ev.HelpRequestCancelled,
    ev.HelpRequestClosed,
)
def help_moved(docs: Batch, e: HelpMoved) -> None:
    """The request moves to its next status and gets the time stamp of that move."""

    def change(session: Session) -> None:
        # Raised before it moves: both are events of the same seat, applied in version order.
        row = session.students[id_text(e.student_id)]
        request = row.help_requests[id_text(e.help_request_id)]
        at = iso(e.occurred_at)
        if isinstance(e, ev.HelpRequestAcknowledged):
            request.status, request.acknowledged_at = ev.HelpRequestStatus.ACKNOWLEDGED, at
        elif isinstance(e, ev.HelpRequestStarted):
            request.status, request.started_at = ev.HelpRequestStatus.IN_PROGRESS, at
        elif isinstance(e, ev.HelpRequestResolved):
            request.status, request.resolved_at = ev.HelpRequestStatus.RESOLVED, at
            request.response = e.response
        elif isinstance(e, ev.HelpRequestCancelled):
            request.status, request.cancelled_at = ev.HelpRequestStatus.CANCELLED, at
        else:
            request.status, request.closed_at = ev.HelpRequestStatus.CLOSED, at
            request.close_reason = e.reason
        if isinstance(
            e, ev.HelpRequestAcknowledged | ev.HelpRequestStarted | ev.HelpRequestResolved
        ):
            request.handled_by = id_text(e.actor_id)  # the tutor came to the student
            row.last_attended_at = at

    session = update_session(docs, e, change)
    index_help_request(docs, session, id_text(e.student_id), id_text(e.help_request_id))


@projects(ev.HelpRequestEscalated)
def help_escalated(docs: Batch, e: ev.HelpRequestEscalated) -> None:
    """Still open past its SLA: the centre's supervisors were told; it stays open."""

    def change(session: Session) -> None:
        # Raised before it is escalated: both are events of the same seat, applied in order.
        request = session.students[id_text(e.student_id)].help_requests[id_text(e.help_request_id)]
        request.escalated_at = iso(e.occurred_at)

    session = update_session(docs, e, change)
    index_help_request(docs, session, id_text(e.student_id), id_text(e.help_request_id))


# --- exercise work ---------------------------------------------------------------------------


@projects(ev.ExerciseAssigned)
def exercise_assigned(docs: Batch, e: ev.ExerciseAssigned) -> None:
    work = Work(
        work_id=id_text(e.work_id),
        exercise_id=id_text(e.exercise_id),
        title=e.title,
        exercise_type=e.exercise_type,
        difficulty=e.difficulty,
        max_score=e.max_score,
        auto_gradable=e.auto_gradable,
        status=ev.WorkStatus.ASSIGNED,
        progress=0,
        assigned_at=iso(e.occurred_at),
        assigned_by=id_text(e.actor_id),
    )

    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        if not isinstance(row.work, dict):
            row.work = {}
        row.work[work.work_id] = work

    update_session(docs, e, change)


def _work(session: Session, student_id: str, work_id: UUID) -> Work:
    # Assigned before it moves: all are events of the same seat, applied in version order.
    work = seat(session, student_id).work
    assert isinstance(work, dict)
    return work[id_text(work_id)]


WorkMoved = (
    ev.ExerciseStarted | ev.ExerciseProgressReported | ev.ExerciseSubmitted | ev.ExerciseGraded
)


@projects(ev.ExerciseStarted, ev.ExerciseProgressReported, ev.ExerciseSubmitted, ev.ExerciseGraded)
def exercise_moved(docs: Batch, e: WorkMoved) -> None:
    def change(session: Session) -> None:
        work = _work(session, id_text(e.student_id), e.work_id)
        at = iso(e.occurred_at)
        if isinstance(e, ev.ExerciseStarted):
            work.status, work.started_at = ev.WorkStatus.IN_PROGRESS, at
        elif isinstance(e, ev.ExerciseProgressReported):
            work.progress, work.progress_at = e.percent, at
        elif isinstance(e, ev.ExerciseSubmitted):
            work.status, work.progress, work.submitted_at = e.status, 100, at
            work.score, work.answers, work.xp_awarded = e.score, dict(e.answers), e.xp_awarded
            if e.paper_upload_id is not None:
                work.paper_upload_id = id_text(e.paper_upload_id)
        else:
            work.status, work.graded_at, work.graded_by = (
                ev.WorkStatus.GRADED,
                at,
                id_text(e.actor_id),
            )
            work.score, work.feedback, work.xp_awarded = e.score, e.feedback, e.xp_awarded
        if not isinstance(e, ev.ExerciseGraded):  # the student's own doing shows they are active
            session.students[id_text(e.student_id)].last_activity_at = at

    update_session(docs, e, change)
