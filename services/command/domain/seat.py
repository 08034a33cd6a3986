"""A student's seat in one session: their attendance and their help requests.

Each enrolled student has their own seat aggregate, so five students acting at once in one
session never contend for the same aggregate version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    NotFound,
    RuleViolated,
    applies,
)
from services.command.domain.exercise import Exercise, check_grade, xp_for
from services.command.domain.session import Session
from shared.events import (
    OPEN_HELP_REQUESTS,
    UNFINISHED_WORK,
    AttendanceMarked,
    AttendanceStatus,
    ExerciseAssigned,
    ExerciseGraded,
    ExerciseProgressReported,
    ExerciseStarted,
    ExerciseSubmitted,
    HelpPriority,
    HelpRequestAcknowledged,
    HelpRequestCancelled,
    HelpRequestClosed,
    HelpRequestCloseReason,
    HelpRequestEscalated,
    HelpRequestRaised,
    HelpRequestResolved,
    HelpRequestStarted,
    HelpRequestStatus,
    PresenceKind,
    SessionStatus,
    StudentPresenceRecorded,
    TeachingMode,
    TeachingModeSwitched,
    WorkStatus,
)
from shared.tenancy import Actor

MAX_NOTE_LENGTH = 2000
ACTIVE_GAP = timedelta(minutes=2)
"""Time between two presence signals counts as active only if the gap is shorter."""
HEARTBEAT_EVERY = timedelta(seconds=30)
"""Heartbeats closer together than this are not recorded (the next one accounts for the gap)."""


class HelpRequestNotFound(NotFound):
    """No help request by that id in this seat (HTTP 404)."""


def seat_id(session_id: UUID, student_id: UUID) -> UUID:
    return uuid5(session_id, f"seat:{student_id}")


@dataclass(frozen=True)
class AttendanceChange:
    """What a new mark means for the student's catch-up work."""

    previous: AttendanceStatus | None
    current: AttendanceStatus
    opens_catch_up: UUID | None = None
    closes_catch_up: UUID | None = None


HELP_TRANSITIONS: dict[str, frozenset[HelpRequestStatus]] = {
    "acknowledge": frozenset({HelpRequestStatus.PENDING}),
    "start helping with": frozenset({HelpRequestStatus.PENDING, HelpRequestStatus.ACKNOWLEDGED}),
    "resolve": OPEN_HELP_REQUESTS,
    "cancel": frozenset({HelpRequestStatus.PENDING, HelpRequestStatus.ACKNOWLEDGED}),
}
"""From which statuses each verb may be applied to a help request."""


@dataclass
class HelpRequest:
    id: UUID
    priority: HelpPriority
    raised_at: datetime
    sla_due_at: datetime
    status: HelpRequestStatus = HelpRequestStatus.PENDING
    escalated: bool = False

    @property
    def active(self) -> bool:
        return self.status in OPEN_HELP_REQUESTS


@dataclass
class ExerciseWork:
    """An exercise set for the student in this session, and how far they are with it."""

    id: UUID
    exercise_id: UUID
    max_score: int
    status: WorkStatus = WorkStatus.ASSIGNED
    progress: int = 0
    score: float | None = None
    xp_awarded: int = 0


class Seat(Aggregate):
    session_id: UUID
    student_id: UUID
    attendance: AttendanceStatus | None
    attendance_notes: str | None
    absences: int
    help_requests: dict[UUID, HelpRequest]

    @classmethod
    def of(cls, session: Session, student_id: UUID) -> Seat:
        """A seat that has recorded nothing yet."""
        seat = cls(seat_id(session.id, student_id), session.centre_id)
        seat.session_id = session.id
        seat.student_id = student_id
        return seat

    def mark_attendance(
        self,
        session: Session,
        status: AttendanceStatus,
        *,
        by: Actor,
        notes: str | None = None,
    ) -> AttendanceChange | None:
        """Record a mark; ``None`` when it repeats the current one."""
        self._require_enrolled(session, field="student_id")
        if session.status not in (SessionStatus.LIVE, SessionStatus.COMPLETED):
            raise InvalidTransition(
                f"attendance is marked once a session has started ({session.status})"
            )
        notes = values.free_text(notes, "notes", MAX_NOTE_LENGTH)
        if status == self.attendance and self._same_text(self.attendance_notes, notes):
            return None
        previous = self.attendance
        self._record(
            AttendanceMarked,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            status=status,
            previous_status=previous,
            notes=notes,
        )
        was_absent = previous is AttendanceStatus.ABSENT
        is_absent = status is AttendanceStatus.ABSENT
        if is_absent and not was_absent:
            return AttendanceChange(previous, status, opens_catch_up=self.open_catch_up_id)
        if was_absent and not is_absent:
            return AttendanceChange(
                previous, status, closes_catch_up=self._catch_up_id(self.absences)
            )
        return AttendanceChange(previous, status)

    @property
    def open_catch_up_id(self) -> UUID | None:
        if self.attendance is AttendanceStatus.ABSENT:
            return self._catch_up_id(self.absences)
        return None

    def _catch_up_id(self, absence_number: int) -> UUID:
        return uuid5(self.id, f"catch-up:{absence_number}")

    def raise_help_request(
        self,
        session: Session,
        priority: HelpPriority,
        *,
        by: Actor,
        sla: timedelta,
        exercise_id: str | None = None,
        message: str | None = None,
    ) -> UUID:
        if not session.is_enrolled(self.student_id):
            raise RuleViolated("only an enrolled student can ask for help in this session")
        if not session.is_live:
            raise RuleViolated(
                f"help can be asked only while the session is LIVE ({session.status})"
            )
        if self.active_help_request is not None:
            raise RuleViolated("this student already has an open help request in this session")
        message = values.free_text(message, "message", MAX_NOTE_LENGTH)
        exercise_id = values.ref(exercise_id, "exercise_id")
        request_id = uuid5(self.id, f"help-request:{len(self.help_requests) + 1}")
        now = datetime.now(UTC)
        event = self._record(
            HelpRequestRaised,
            by,
            at=now,
            session_id=self.session_id,
            student_id=self.student_id,
            help_request_id=request_id,
            priority=priority,
            sla_due_at=now + sla,
            exercise_id=exercise_id,
            message=message,
        )
        return event.help_request_id

    def acknowledge_help_request(self, request_id: UUID, *, by: Actor) -> None:
        self._move_help(request_id, "acknowledge", HelpRequestAcknowledged, by)

    def start_helping(self, request_id: UUID, *, by: Actor) -> None:
        self._move_help(request_id, "start helping with", HelpRequestStarted, by)

    def resolve_help_request(self, request_id: UUID, *, by: Actor, response: str) -> None:
        response = values.text(
            response,
            "response",
            MAX_NOTE_LENGTH,
            lines=True,
            what="response (how the request was resolved)",
        )
        self._move_help(request_id, "resolve", HelpRequestResolved, by, response=response)

    def cancel_help_request(self, request_id: UUID, *, by: Actor) -> None:
        if by.user_id != self.student_id:
            raise RuleViolated("only the student who asked can withdraw a help request")
        self._move_help(request_id, "cancel", HelpRequestCancelled, by)

    def close_open_help_request(self, reason: HelpRequestCloseReason, *, by: Actor) -> UUID | None:
        """Close the student's open help request, if any, because nobody can answer it any
        more (the session ended, the student left it); the id of the one closed."""
        request = self.active_help_request
        if request is None:
            return None
        self._record(
            HelpRequestClosed,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            help_request_id=request.id,
            reason=reason,
        )
        return request.id

    def escalate_help_request(self, request_id: UUID, *, by: Actor, sla_due_at: datetime) -> bool:
        """The request's SLA ran out while it was still open: the supervisors are told.
        ``False`` when it no longer applies: answered, withdrawn or closed meanwhile, escalated
        already, or not due at ``sla_due_at``."""
        request = self.help_requests.get(request_id)
        if request is None:
            raise HelpRequestNotFound("no such help request in this session")
        if not request.active or request.escalated or request.sla_due_at != sla_due_at:
            return False
        self._record(
            HelpRequestEscalated,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            help_request_id=request_id,
            priority=request.priority,
            sla_due_at=request.sla_due_at,
        )
        return True

    def _move_help(
        self, request_id: UUID, verb: str, event_class: type[Any], by: Actor, **fields: Any
    ) -> None:
        request = self.help_requests.get(request_id)
        if request is None:
            raise HelpRequestNotFound("no such help request in this session")
        if request.status not in HELP_TRANSITIONS[verb]:
            raise InvalidTransition(f"cannot {verb} a help request that is {request.status}")
        self._record(
            event_class,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            help_request_id=request_id,
            **fields,
        )

    def record_presence(self, session: Session, kind: PresenceKind, *, by: Actor) -> bool:
        """Record a presence signal; ``False`` for a heartbeat too soon after the last one."""
        self._require_enrolled(session)
        if not session.is_live:
            raise RuleViolated(f"presence is recorded while the session is LIVE ({session.status})")
        now = datetime.now(UTC)
        if (
            kind in (PresenceKind.HEARTBEAT, PresenceKind.DISCONNECT, PresenceKind.LEAVE)
            and not self.present
        ):
            raise RuleViolated(f"cannot record {kind} for a student who is not in the session")
        if kind is PresenceKind.RECONNECT and self.present:
            raise RuleViolated("the student is still connected")
        if (
            kind is PresenceKind.HEARTBEAT
            and self.last_seen_at
            and now - self.last_seen_at < HEARTBEAT_EVERY
        ):
            return False
        active = self.active_seconds
        if self.present and self.last_seen_at is not None and now - self.last_seen_at < ACTIVE_GAP:
            active += int((now - self.last_seen_at).total_seconds())
        self._record(
            StudentPresenceRecorded,
            by,
            at=now,
            session_id=self.session_id,
            student_id=self.student_id,
            kind=kind,
            active_seconds=active,
        )
        return True

    def switch_teaching_mode(self, session: Session, mode: TeachingMode, *, by: Actor) -> bool:
        """The tutor teaches this student now, or leaves them to work; ``False`` if unchanged."""
        self._require_enrolled(session)
        if not session.is_live:
            raise RuleViolated(f"teaching happens while the session is LIVE ({session.status})")
        if mode is self.teaching_mode:
            return False
        now = datetime.now(UTC)
        total = self.teaching_seconds
        if self.teaching_mode is TeachingMode.TEACH and self.teaching_since is not None:
            total += int((now - self.teaching_since).total_seconds())
        self._record(
            TeachingModeSwitched,
            by,
            at=now,
            session_id=self.session_id,
            student_id=self.student_id,
            mode=mode,
            teaching_seconds=total,
        )
        return True

    def assign_exercise(self, session: Session, exercise: Exercise, *, by: Actor) -> UUID:
        self._require_enrolled(session, field="student_id")
        if not session.is_live:
            raise RuleViolated(f"exercises are set while the session is LIVE ({session.status})")
        if exercise.retired:
            raise RuleViolated("the exercise is retired", field="exercise_id")
        if any(
            w.exercise_id == exercise.id and w.status in UNFINISHED_WORK for w in self.work.values()
        ):
            raise RuleViolated(
                "the student is already working on this exercise", field="exercise_id"
            )
        work_id = uuid5(self.id, f"work:{len(self.work) + 1}")
        self._record(
            ExerciseAssigned,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
            exercise_id=exercise.id,
            title=exercise.title,
            exercise_type=exercise.exercise_type,
            difficulty=exercise.difficulty,
            max_score=exercise.max_score,
            auto_gradable=exercise.auto_gradable,
        )
        return work_id

    def start_exercise(self, session: Session, work_id: UUID, *, by: Actor) -> None:
        work = self._own_work(session, work_id, by, "start")
        if work.status is not WorkStatus.ASSIGNED:
            raise InvalidTransition(f"cannot start work that is {work.status}")
        self._record(
            ExerciseStarted,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
        )

    def report_progress(self, session: Session, work_id: UUID, percent: int, *, by: Actor) -> bool:
        """How far the student is, 0 to 99 (100 is handing in); ``False`` if unchanged."""
        work = self._own_work(session, work_id, by, "report progress on")
        values.whole(percent, "percent", 0, 99, unit=" (percent; hand the work in to finish it)")
        if work.status is not WorkStatus.IN_PROGRESS:
            raise InvalidTransition(f"progress is reported on work in progress, not {work.status}")
        if percent == work.progress:
            return False
        self._record(
            ExerciseProgressReported,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
            percent=percent,
        )
        return True

    def submit_exercise(
        self,
        session: Session,
        work_id: UUID,
        exercise: Exercise,
        answers: dict[str, str],
        *,
        by: Actor,
    ) -> ExerciseWork:
        """Hand the work in; it is marked at once where the exercise has an answer key."""
        work = self._own_work(session, work_id, by, "hand in", finished_session_too=True)
        if work.status is not WorkStatus.IN_PROGRESS:
            raise InvalidTransition(f"only work in progress is handed in, not {work.status}")
        exercise.check_answers(answers)
        marking = exercise.mark(answers)
        self._record(
            ExerciseSubmitted,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
            answers=dict(answers),
            max_score=marking.max_score,
            status=WorkStatus.SUBMITTED if marking.score is None else WorkStatus.AUTO_GRADED,
            score=marking.score,
            xp_awarded=0 if marking.score is None else xp_for(marking.score, marking.max_score),
        )
        return work

    def hand_in_on_paper(self, work_id: UUID, upload_id: UUID, *, by: Actor) -> bool:
        """The work came back on paper (its answers are on the pages): it waits for the tutor,
        whether or not an answer key could mark it. ``False`` when it was already handed in."""
        work = self.work[work_id]
        if work.status not in UNFINISHED_WORK:
            return False
        self._record(
            ExerciseSubmitted,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
            answers={},
            max_score=work.max_score,
            status=WorkStatus.SUBMITTED,
            paper_upload_id=upload_id,
        )
        return True

    def grade_exercise(
        self, work_id: UUID, *, by: Actor, score: float, feedback: str | None
    ) -> ExerciseWork:
        work = self.work[work_id]
        if work.status is not WorkStatus.SUBMITTED:
            raise InvalidTransition(
                f"only handed-in work waiting for a tutor is graded, not {work.status}"
            )
        check_grade(score, work.max_score, feedback)
        self._record(
            ExerciseGraded,
            by,
            session_id=self.session_id,
            student_id=self.student_id,
            work_id=work_id,
            score=score,
            max_score=work.max_score,
            feedback=feedback,
            xp_awarded=xp_for(score, work.max_score),
        )
        return work

    def _own_work(
        self,
        session: Session,
        work_id: UUID,
        by: Actor,
        verb: str,
        *,
        finished_session_too: bool = False,
    ) -> ExerciseWork:
        if by.user_id != self.student_id:
            raise RuleViolated(f"only the student themselves can {verb} their work")
        if not session.is_enrolled(self.student_id):
            raise RuleViolated(f"cannot {verb} work after leaving the session")
        allowed = (
            (SessionStatus.LIVE, SessionStatus.COMPLETED)
            if finished_session_too
            else (SessionStatus.LIVE,)
        )
        if session.status not in allowed:
            raise RuleViolated(f"cannot {verb} work while the session is {session.status}")
        return self.work[work_id]

    def _require_enrolled(self, session: Session, field: str | None = None) -> None:
        if not session.is_enrolled(self.student_id):
            raise RuleViolated("the student is not enrolled in this session", field=field)

    @property
    def active_help_request(self) -> HelpRequest | None:
        return next((r for r in self.help_requests.values() if r.active), None)

    def _blank(self) -> None:
        self.present = False
        self.last_seen_at: datetime | None = None
        self.active_seconds = 0
        self.teaching_mode = TeachingMode.OBSERVE
        self.teaching_since: datetime | None = None
        self.teaching_seconds = 0
        self.attendance = None
        self.attendance_notes = None
        self.absences = 0
        self.help_requests = {}
        self.work: dict[UUID, ExerciseWork] = {}

    @applies(AttendanceMarked)
    def _attendance_marked(self, event: AttendanceMarked) -> None:
        self.session_id = event.session_id
        self.student_id = event.student_id
        if (
            event.status is AttendanceStatus.ABSENT
            and self.attendance is not AttendanceStatus.ABSENT
        ):
            self.absences += 1
        self.attendance = event.status
        self.attendance_notes = event.notes

    @applies(StudentPresenceRecorded)
    def _presence(self, event: StudentPresenceRecorded) -> None:
        self.session_id, self.student_id = event.session_id, event.student_id
        self.present = event.kind not in (PresenceKind.LEAVE, PresenceKind.DISCONNECT)
        self.last_seen_at = event.occurred_at
        self.active_seconds = event.active_seconds

    @applies(TeachingModeSwitched)
    def _mode_switched(self, event: TeachingModeSwitched) -> None:
        self.session_id, self.student_id = event.session_id, event.student_id
        self.teaching_mode = event.mode
        self.teaching_since = event.occurred_at if event.mode is TeachingMode.TEACH else None
        self.teaching_seconds = event.teaching_seconds

    @applies(HelpRequestAcknowledged)
    def _help_acknowledged(self, event: HelpRequestAcknowledged) -> None:
        self.help_requests[event.help_request_id].status = HelpRequestStatus.ACKNOWLEDGED

    @applies(HelpRequestStarted)
    def _help_started(self, event: HelpRequestStarted) -> None:
        self.help_requests[event.help_request_id].status = HelpRequestStatus.IN_PROGRESS

    @applies(HelpRequestResolved)
    def _help_resolved(self, event: HelpRequestResolved) -> None:
        self.help_requests[event.help_request_id].status = HelpRequestStatus.RESOLVED

    @applies(HelpRequestCancelled)
    def _help_cancelled(self, event: HelpRequestCancelled) -> None:
        self.help_requests[event.help_request_id].status = HelpRequestStatus.CANCELLED

    @applies(HelpRequestClosed)
    def _help_closed(self, event: HelpRequestClosed) -> None:
        self.help_requests[event.help_request_id].status = HelpRequestStatus.CLOSED

    @applies(HelpRequestEscalated)
    def _help_escalated(self, event: HelpRequestEscalated) -> None:
        self.help_requests[event.help_request_id].escalated = True

    @applies(HelpRequestRaised)
    def _help_requested(self, event: HelpRequestRaised) -> None:
        self.session_id = event.session_id
        self.student_id = event.student_id
        self.help_requests[event.help_request_id] = HelpRequest(
            id=event.help_request_id,
            priority=event.priority,
            raised_at=event.occurred_at,
            sla_due_at=event.sla_due_at,
        )

    @applies(ExerciseAssigned)
    def _exercise_assigned(self, event: ExerciseAssigned) -> None:
        self.session_id, self.student_id = event.session_id, event.student_id
        self.work[event.work_id] = ExerciseWork(event.work_id, event.exercise_id, event.max_score)

    @applies(ExerciseStarted)
    def _exercise_started(self, event: ExerciseStarted) -> None:
        self.work[event.work_id].status = WorkStatus.IN_PROGRESS

    @applies(ExerciseProgressReported)
    def _progress_reported(self, event: ExerciseProgressReported) -> None:
        self.work[event.work_id].progress = event.percent

    @applies(ExerciseSubmitted)
    def _exercise_submitted(self, event: ExerciseSubmitted) -> None:
        work = self.work[event.work_id]
        work.status, work.score, work.progress = event.status, event.score, 100
        work.xp_awarded = event.xp_awarded

    @applies(ExerciseGraded)
    def _exercise_graded(self, event: ExerciseGraded) -> None:
        work = self.work[event.work_id]
        work.status, work.score, work.xp_awarded = WorkStatus.GRADED, event.score, event.xp_awarded
