"""The ``session`` document (the Control Center): its schedule, status and roster.

Every change of a session is followed by recomputing what the tutor's and the students'
documents hold about it (:mod:`.tutor`, :mod:`.student`), so those never depend on the order in
which events of different aggregates arrive.
"""

from __future__ import annotations

from collections.abc import Callable

from shared import events as ev
from shared.readmodels.documents import CATCH_UP, SESSION, AttendanceReminder, Seat, Session
from shared.readmodels.ids import id_text
from shared.readmodels.projector.batch import Batch, OutOfOrder
from shared.readmodels.projector.indexes import index_catch_up
from shared.readmodels.projector.registry import projects
from shared.readmodels.projector.student import refresh_student
from shared.readmodels.projector.tutor import refresh_tutor
from shared.readmodels.times import iso
from shared.tenancy.roles import Role


def update_session(
    docs: Batch, e: ev.SessionScopedEvent, change: Callable[[Session], None]
) -> Session:
    """Change the event's session, then what its tutor's and students' documents hold about
    it (only the event's student's, for an event of one student)."""
    session = docs.get(SESSION, id_text(e.session_id))
    if session is None:
        raise OutOfOrder(f"{e.type_name} of session {e.session_id} arrived before SessionScheduled")
    student_id = getattr(e, "student_id", None)
    if (
        student_id
        and e.aggregate_id != e.session_id
        and id_text(student_id) not in session.students
    ):
        # An event of the student's seat (or catch-up) comes after their StudentEnrolled. Were
        # it to make their row here first, the session's events between would refresh the
        # student's document once more than in stream order: its version would depend on which
        # replica applied what first.
        raise OutOfOrder(
            f"{e.type_name} of student {student_id} in session {e.session_id} "
            "arrived before StudentEnrolled"
        )
    change(session)
    docs.put(SESSION, id_text(e.session_id), e.centre_id, session)
    refresh_tutor(docs, session, e.occurred_at)
    for sid in [id_text(student_id)] if student_id else list(session.students):
        refresh_student(docs, session, sid)
    return session


def seat(session: Session, student_id: str) -> Seat:
    """The student's row in the session, made blank if they have none yet."""
    return session.students.setdefault(student_id, Seat(student_id=student_id))


@projects(ev.SessionScheduled)
def session_scheduled(docs: Batch, e: ev.SessionScheduled) -> None:
    session = Session(
        session_id=id_text(e.session_id),
        centre_id=e.centre_id,
        title=e.title,
        tutor_id=id_text(e.tutor_id),
        status=ev.SessionStatus.SCHEDULED,
        starts_at=iso(e.starts_at),
        ends_at=iso(e.ends_at),
        time_zone=e.time_zone,
        mode=e.mode,
        meeting_link=e.meeting_link,
        location=e.location,
        capacity=e.capacity,
        class_id=id_text(e.class_id) if e.class_id else None,
    )
    # Events of the session's seats may have been applied first (competing consumers).
    existing = docs.get(SESSION, id_text(e.session_id))
    if existing is not None:
        session.students = existing.students
    docs.put(SESSION, id_text(e.session_id), e.centre_id, session)
    refresh_tutor(docs, session, e.occurred_at)


@projects(ev.SessionStarted)
def session_started(docs: Batch, e: ev.SessionStarted) -> None:
    def change(session: Session) -> None:
        session.status, session.started_at = ev.SessionStatus.LIVE, iso(e.occurred_at)

    update_session(docs, e, change)


@projects(ev.SessionEnded)
def session_ended(docs: Batch, e: ev.SessionEnded) -> None:
    def change(session: Session) -> None:
        session.status, session.ended_at = ev.SessionStatus.COMPLETED, iso(e.occurred_at)
        if e.actor_role is Role.SYSTEM:  # left LIVE past its end: the scheduler completed it
            session.auto_completed = True

    update_session(docs, e, change)


@projects(ev.SessionCancelled)
def session_cancelled(docs: Batch, e: ev.SessionCancelled) -> None:
    def change(session: Session) -> None:
        session.status, session.cancelled_at = ev.SessionStatus.CANCELLED, iso(e.occurred_at)
        session.cancel_reason = e.reason

    update_session(docs, e, change)


@projects(ev.SessionRescheduled)
def session_rescheduled(docs: Batch, e: ev.SessionRescheduled) -> None:
    def change(session: Session) -> None:
        session.starts_at, session.ends_at = iso(e.starts_at), iso(e.ends_at)

    session = update_session(docs, e, change)
    for row in session.students.values():  # the catch-up list shows the session's start
        for catch_up_id in row.catch_ups:
            catch_up = docs.get(CATCH_UP, catch_up_id)
            if catch_up is not None:
                index_catch_up(docs, catch_up, session)


@projects(ev.SessionModeChanged)
def session_mode_changed(docs: Batch, e: ev.SessionModeChanged) -> None:
    def change(session: Session) -> None:
        session.mode, session.meeting_link, session.location = e.mode, e.meeting_link, e.location

    update_session(docs, e, change)


@projects(ev.SessionExtended)
def session_extended(docs: Batch, e: ev.SessionExtended) -> None:
    def change(session: Session) -> None:
        session.ends_at = iso(e.ends_at)

    update_session(docs, e, change)


@projects(ev.SessionReminderSent)
def session_reminded(docs: Batch, e: ev.SessionReminderSent) -> None:
    def change(session: Session) -> None:
        session.reminded_at = iso(e.occurred_at)

    update_session(docs, e, change)


@projects(ev.AttendanceReminderSent)
def attendance_reminded(docs: Batch, e: ev.AttendanceReminderSent) -> None:
    def change(session: Session) -> None:
        session.attendance_reminder = AttendanceReminder(
            sent_at=iso(e.occurred_at),
            unmarked_student_ids=[id_text(i) for i in e.unmarked_student_ids],
        )

    update_session(docs, e, change)


# --- the roster ------------------------------------------------------------------------------


@projects(ev.StudentEnrolled)
def student_enrolled(docs: Batch, e: ev.StudentEnrolled) -> None:
    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        row.enrolled, row.course_id, row.lesson_id = True, e.course_id, e.lesson_id

    update_session(docs, e, change)


@projects(ev.StudentLessonChanged)
def student_lesson_changed(docs: Batch, e: ev.StudentLessonChanged) -> None:
    def change(session: Session) -> None:
        row = seat(session, id_text(e.student_id))
        row.course_id, row.lesson_id = e.course_id, e.lesson_id
        row.lesson_changed_at, row.lesson_changed_by = iso(e.occurred_at), id_text(e.actor_id)

    update_session(docs, e, change)


@projects(ev.StudentRemoved)
def student_removed(docs: Batch, e: ev.StudentRemoved) -> None:
    def change(session: Session) -> None:
        seat(session, id_text(e.student_id)).enrolled = False

    update_session(docs, e, change)
