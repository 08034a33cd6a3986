"""The ``student`` document: what it holds about the student's sessions (recomputed from the
session documents), the notes about them, their academic profile and content assignments."""

from __future__ import annotations

import msgspec

from shared import events as ev
from shared.readmodels.documents import (
    STUDENT,
    ContentAssignment,
    LevelChange,
    Note,
    Session,
    Student,
    StudentSession,
    Subject,
    Work,
    work_of,
)
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso


def student_doc(docs: Batch, centre_id: str, student_id: str) -> Student:
    """The student's document, blank if there is none yet."""
    return docs.get(STUDENT, student_id) or Student(student_id=student_id, centre_id=centre_id)


def without_answers(work: Work) -> Work:
    """Exercise work as the student's own document holds it."""
    return msgspec.structs.replace(work, answers=msgspec.UNSET)


def refresh_student(docs: Batch, session: Session, student_id: str) -> None:
    """What the student's own document holds about this session, recomputed from the session."""
    row = session.students.get(student_id)
    if row is None:
        return
    student = student_doc(docs, session.centre_id, student_id)
    student.sessions[session.session_id] = StudentSession(
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
    docs.put(STUDENT, student_id, session.centre_id, student)


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
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


@projects(ev.TutorNoteEdited, ev.TutorNoteRedacted)
def note_changed(docs: Batch, e: ev.TutorNoteEdited | ev.TutorNoteRedacted) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    note = student.notes[str(e.aggregate_id)]  # written before: same aggregate, in order
    if isinstance(e, ev.TutorNoteEdited):
        note.content, note.visibility, note.edited_at = e.content, e.visibility, iso(e.occurred_at)
    else:
        note.content, note.redacted, note.redacted_at = None, True, iso(e.occurred_at)
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


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
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


@projects(ev.WorkingLevelChanged)
def working_level_changed(docs: Batch, e: ev.WorkingLevelChanged) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    subject = student.subjects[e.course_id]  # assessed before: same aggregate, in order
    subject.working_level = e.new_level
    subject.history.append(_level_change(e, e.previous_level, e.new_level, e.change_type, e.reason))
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


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
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)


@projects(ev.ContentAssignmentWithdrawn)
def content_assignment_withdrawn(docs: Batch, e: ev.ContentAssignmentWithdrawn) -> None:
    student = student_doc(docs, e.centre_id, str(e.student_id))
    assignment = student.content_assignments[str(e.assignment_id)]
    assignment.status = ev.ContentAssignmentStatus.WITHDRAWN
    assignment.ended_at, assignment.withdrawn_by = iso(e.occurred_at), str(e.actor_id)
    assignment.withdraw_reason = e.reason
    docs.put(STUDENT, str(e.student_id), e.centre_id, student)
