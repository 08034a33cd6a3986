"""The ``student`` document: what it holds about the student's sessions (recomputed from the
session documents), the notes about them, their academic profile and content assignments."""

from __future__ import annotations

import msgspec

from shared import events as ev
from shared.readmodels.documents import (
    STUDENT,
    STUDENT_RISK,
    STUDENT_SESSIONS,
    ArchivedSessions,
    ContentAssignment,
    LevelChange,
    Note,
    Session,
    Student,
    StudentHistory,
    StudentSession,
    Subject,
    Work,
    month_of,
    student_history_key,
    work_of,
)
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso

RISK_MARKS = 12
"""How many of the latest marked sessions and scored exercises ``student_risk`` keeps."""


def _percent_of(work: Work) -> float | None:
    if work.status not in RISK_SCORED or work.score is None or work.max_score <= 0:
        return None
    return 100.0 * work.score / work.max_score


RISK_SCORED = frozenset({ev.WorkStatus.AUTO_GRADED, ev.WorkStatus.GRADED})


def risk_inputs(student: Student) -> Student:
    """What the risk score and the absence alerts read of a student (their latest
    ``RISK_MARKS`` marked sessions, the latest attended and the first marked one, the sessions
    of their latest ``RISK_MARKS`` scored exercises with those alone, open homework), without
    the rest: what My Day reads for each student it shows."""
    marked = sorted(
        (s for s in student.sessions.values() if s.attendance),
        key=lambda s: (s.starts_at, s.session_id),
        reverse=True,
    )
    keep = {s.session_id for s in marked[:RISK_MARKS]}
    attended = [s for s in marked if s.attendance in _ATTENDED]
    keep |= {s.session_id for s in (attended[:1] + marked[-1:])}
    scored = sorted(
        (w.graded_at or w.submitted_at or w.assigned_at, w.work_id, s.session_id)
        for s in student.sessions.values()
        for w in s.work.values()
        if _percent_of(w) is not None
    )[-RISK_MARKS:]
    works: dict[str, set[str]] = {}
    for _, work_id, session_id in scored:
        works.setdefault(session_id, set()).add(work_id)
    sessions = {
        key: msgspec.structs.replace(
            s,
            catch_ups={},
            help_requests={},
            work={w: s.work[w] for w in sorted(works.get(key, ()))},
        )
        for key, s in student.sessions.items()
        if key in keep or key in works
    }
    return Student(
        student_id=student.student_id,
        centre_id=student.centre_id,
        sessions=sessions,
        homework={k: h for k, h in student.homework.items() if h.status in ev.OPEN_HOMEWORK},
        overdue_homework=student.overdue_homework,
        archived=student.archived,
    )


def put_student(docs: Batch, student: Student) -> None:
    """Write the student's document, and what My Day reads of it (``student_risk``)."""
    docs.put(STUDENT, student.student_id, student.centre_id, student)
    docs.put(STUDENT_RISK, student.student_id, student.centre_id, risk_inputs(student))


def student_doc(docs: Batch, centre_id: str, student_id: str) -> Student:
    """The student's document, blank if there is none yet."""
    return docs.get(STUDENT, student_id) or Student(student_id=student_id, centre_id=centre_id)


def without_answers(work: Work) -> Work:
    """Exercise work as the student's own document holds it."""
    return msgspec.structs.replace(work, answers=msgspec.UNSET)


STUDENT_RECENT_SESSIONS: int | None = None
"""How many of a student's latest sessions their document keeps (by start); older ones move
to ``student_sessions`` documents unless they still have something open. ``None``: every
session stays. The bound is off because what it moves depends on the order in which events of
different aggregates arrive (replicas apply them in any order across aggregates): a session
moved out and back leaves the archive's first marked start behind, and the month documents
are written once per move, so live read models came out unlike a rebuild's."""

_ATTENDED = frozenset({ev.AttendanceStatus.PRESENT, ev.AttendanceStatus.LATE})


def refresh_student(docs: Batch, session: Session, student_id: str) -> None:
    """What the student's own document holds about this session, recomputed from the session."""
    row = session.students.get(student_id)
    if row is None:
        return
    student = student_doc(docs, session.centre_id, student_id)
    record = StudentSession(
        session_id=session.session_id,
        title=session.title,
        status=session.status,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        enrolled=row.enrolled,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        attendance=row.attendance,
        attendance_notes=row.attendance_notes,
        catch_ups=row.catch_ups,
        help_requests=row.help_requests,
        work={k: without_answers(w) for k, w in work_of(row).items()},
    )
    if session.session_id in student.sessions or not _in_history(docs, student, record):
        student.sessions[session.session_id] = record
        _keep_recent(docs, student)
    put_student(docs, student)


def _pinned(session: StudentSession) -> bool:
    """Something of the session is still open: it stays in the student's document."""
    return (
        any(c.status in ev.OPEN_CATCH_UPS for c in session.catch_ups.values())
        or any(w.status in ev.UNFINISHED_WORK for w in session.work.values())
        or any(h.status in ev.OPEN_HELP_REQUESTS for h in session.help_requests.values())
    )


def _archive(student: Student) -> ArchivedSessions:
    if not isinstance(student.archived, ArchivedSessions):
        student.archived = ArchivedSessions()
    return student.archived


def _count(archived: ArchivedSessions, session: StudentSession, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) a session's part of the archive's totals. The latest
    attended and the first marked start only ever move on."""
    archived.count += sign
    if session.attendance is not None:
        status = session.attendance.value
        archived.attendance[status] = archived.attendance.get(status, 0) + sign
        if not archived.attendance[status]:
            del archived.attendance[status]
    archived.work_xp += sign * sum(w.xp_awarded for w in session.work.values())
    if sign > 0 and session.attendance is not None:
        if session.attendance in _ATTENDED and session.starts_at > (
            archived.last_attended_at or ""
        ):
            archived.last_attended_at = session.starts_at
        if archived.first_marked_at is None or session.starts_at < archived.first_marked_at:
            archived.first_marked_at = session.starts_at


def _history(docs: Batch, student: Student, month: str) -> StudentHistory:
    key = student_history_key(student.student_id, month)
    return docs.get(STUDENT_SESSIONS, key) or StudentHistory(
        student_id=student.student_id, centre_id=student.centre_id, month=month
    )


def _in_history(docs: Batch, student: Student, session: StudentSession) -> bool:
    """If the session was moved out of the student's document, keep it there up to date (or
    bring it back while something of it is open); ``False`` if it never was."""
    archived = student.archived
    month = month_of(session.starts_at)
    if not isinstance(archived, ArchivedSessions) or month not in archived.months:
        return False
    history = _history(docs, student, month)
    before = history.sessions.get(session.session_id)
    if before is None:
        return False
    _count(archived, before, -1)
    key = student_history_key(student.student_id, month)
    if _pinned(session):
        del history.sessions[session.session_id]
        student.sessions[session.session_id] = session
    else:
        history.sessions[session.session_id] = session
        _count(archived, session, 1)
    docs.put(STUDENT_SESSIONS, key, student.centre_id, history)
    return True


def _keep_recent(docs: Batch, student: Student) -> None:
    """Move the oldest sessions with nothing open out of the document, down to
    ``STUDENT_RECENT_SESSIONS``."""
    if STUDENT_RECENT_SESSIONS is None:
        return
    extra = len(student.sessions) - STUDENT_RECENT_SESSIONS
    if extra <= 0:
        return
    oldest = sorted(
        (s for s in student.sessions.values() if not _pinned(s)),
        key=lambda s: (s.starts_at, s.session_id),
    )[:extra]
    archived = _archive(student)
    for session in oldest:
        month = month_of(session.starts_at)
        history = _history(docs, student, month)
        history.sessions[session.session_id] = session
        docs.put(
            STUDENT_SESSIONS,
            student_history_key(student.student_id, month),
            student.centre_id,
            history,
        )
        del student.sessions[session.session_id]
        _count(archived, session, 1)
        if month not in archived.months:
            archived.months.append(month)
            archived.months.sort()


# --- notes about the student -----------------------------------------------------------------


@projects(ev.TutorNoteWritten)
def note_written(docs: Batch, e: ev.TutorNoteWritten) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    student.notes[str(e.aggregate_id)] = Note(
        note_id=str(e.aggregate_id),
        author_id=str(e.actor_id),
        visibility=e.visibility,
        content=e.content,
        session_id=str(e.session_id) if e.session_id else None,
        written_at=iso(e.occurred_at),
    )
    put_student(docs, student)


@projects(ev.TutorNoteEdited, ev.TutorNoteRedacted)
def note_changed(docs: Batch, e: ev.TutorNoteEdited | ev.TutorNoteRedacted) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    note = student.notes[str(e.aggregate_id)]  # written before: same aggregate, in order
    if isinstance(e, ev.TutorNoteEdited):
        note.content, note.visibility, note.edited_at = e.content, e.visibility, iso(e.occurred_at)
    else:
        note.content, note.redacted, note.redacted_at = None, True, iso(e.occurred_at)
    put_student(docs, student)


# --- the academic profile --------------------------------------------------------------------


def _level_change(
    e: ev.Event, previous: int | None, new: int, change_type: ev.LevelChangeType, reason: str | None
) -> LevelChange:
    return LevelChange(
        at=iso(e.occurred_at),
        previous_level=previous,
        new_level=new,
        change_type=change_type,
        reason=reason,
        changed_by=str(e.actor_id),
    )


@projects(ev.SubjectAssessed)
def subject_assessed(docs: Batch, e: ev.SubjectAssessed) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    earlier = student.subjects.get(e.course_id)
    assessment = _level_change(
        e, e.previous_working_level, e.working_level, ev.LevelChangeType.ASSESSMENT_RESULT, e.notes
    )
    assessment.school_grade = e.school_grade
    student.subjects[e.course_id] = Subject(
        course_id=e.course_id,
        school_grade=e.school_grade,
        working_level=e.working_level,
        last_assessed_at=iso(e.occurred_at),
        assessed_by=str(e.actor_id),
        assessment_notes=e.notes,
        history=[*(earlier.history if earlier else []), assessment],
    )
    put_student(docs, student)


@projects(ev.WorkingLevelChanged)
def working_level_changed(docs: Batch, e: ev.WorkingLevelChanged) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    subject = student.subjects[e.course_id]  # assessed before: same aggregate, in order
    subject.working_level = e.new_level
    subject.history.append(_level_change(e, e.previous_level, e.new_level, e.change_type, e.reason))
    put_student(docs, student)


@projects(ev.ContentAssigned)
def content_assigned(docs: Batch, e: ev.ContentAssigned) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    assignments = student.content_assignments
    assignment_id = str(e.assignment_id)
    if e.replaces is not None:
        replaced = assignments[str(e.replaces)]
        replaced.status = ev.ContentAssignmentStatus.SUPERSEDED
        replaced.ended_at, replaced.superseded_by = iso(e.occurred_at), assignment_id
    assignments[assignment_id] = ContentAssignment(
        assignment_id=assignment_id,
        course_id=e.course_id,
        lesson_id=e.lesson_id,
        exercise_id=e.exercise_id,
        reason=e.reason,
        session_id=str(e.session_id) if e.session_id else None,
        assigned_by=str(e.actor_id),
        assigned_at=iso(e.occurred_at),
        status=ev.ContentAssignmentStatus.ACTIVE,
        replaces=str(e.replaces) if e.replaces else None,
    )
    put_student(docs, student)


@projects(ev.ContentAssignmentWithdrawn)
def content_assignment_withdrawn(docs: Batch, e: ev.ContentAssignmentWithdrawn) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    assignment = student.content_assignments[str(e.assignment_id)]
    assignment.status = ev.ContentAssignmentStatus.WITHDRAWN
    assignment.ended_at, assignment.withdrawn_by = iso(e.occurred_at), str(e.actor_id)
    assignment.withdraw_reason = e.reason
    put_student(docs, student)
