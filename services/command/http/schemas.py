"""Request bodies of the command API. Unknown fields are refused, so a body can never carry a
centre id (the centre comes from the token)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    LevelChangeType,
    NoteVisibility,
    PresenceKind,
    Question,
    SessionMode,
    TeachingMode,
)
from shared.tenancy import Role

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Body(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


class RegisterCentre(Body, frozen=True):
    centre_id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
    name: Text
    time_zone: Text = "Australia/Sydney"
    help_sla_minutes: dict[HelpPriority, Annotated[int, msgspec.Meta(ge=1, le=1440)]] | None = None


class ChangeHelpSlas(Body, frozen=True):
    help_sla_minutes: Annotated[dict[HelpPriority, Annotated[int, msgspec.Meta(ge=1, le=1440)]],
                                msgspec.Meta(min_length=1)]


class ChangeSessionLength(Body, frozen=True):
    max_session_minutes: Annotated[int, msgspec.Meta(ge=15, le=1440)]


class RegisterPerson(Body, frozen=True):
    name: Text
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    role: Role
    guardian_id: UUID | None = None


class ScheduleSession(Body, frozen=True):
    title: Text
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    tutor_id: UUID | None = None
    time_zone: Text | None = None
    meeting_link: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    location: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    class_id: UUID | None = None


class CancelSession(Body, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class EnrolStudent(Body, frozen=True):
    student_id: UUID
    course_id: Ref | None = None
    lesson_id: Ref | None = None


class ChangeLesson(Body, frozen=True):
    lesson_id: Ref
    course_id: Ref | None = None
    """Omitted: the student's course in the session."""
    reason: LongText | None = None


class RemoveStudent(Body, frozen=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class AttendanceRecord(Body, frozen=True):
    student_id: UUID
    status: AttendanceStatus
    notes: LongText | None = None


class BulkAttendance(Body, frozen=True):
    session_id: UUID
    records: Annotated[list[AttendanceRecord], msgspec.Meta(min_length=1, max_length=50)]


class RaiseHelpRequest(Body, frozen=True):
    priority: HelpPriority = HelpPriority.MEDIUM
    exercise_id: Ref | None = None
    message: LongText | None = None


class ResolveHelpRequest(Body, frozen=True):
    response: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class AssignCatchUp(Body, frozen=True):
    session_id: UUID
    student_id: UUID
    due_at: datetime
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class RecordPresence(Body, frozen=True):
    event: PresenceKind


class SwitchTeachingMode(Body, frozen=True):
    mode: TeachingMode


class RescheduleSession(Body, frozen=True):
    starts_at: datetime
    ends_at: datetime
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ChangeSessionMode(Body, frozen=True):
    mode: SessionMode
    meeting_link: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    location: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class ExtendSession(Body, frozen=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=120)] = 5


NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class WriteNote(Body, frozen=True):
    content: NoteText
    visibility: NoteVisibility = NoteVisibility.INTERNAL
    session_id: UUID | None = None


class EditNote(Body, frozen=True):
    content: NoteText
    visibility: NoteVisibility | None = None


class RedactNote(Body, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ClassDetails(Body, frozen=True):
    name: Text
    subject: Text
    teacher_id: UUID
    capacity: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20


class CancelClass(Body, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class AddMember(Body, frozen=True):
    student_id: UUID


class ScheduleClassSession(Body, frozen=True):
    title: Text
    starts_at: datetime
    ends_at: datetime
    mode: SessionMode
    time_zone: Text | None = None
    meeting_link: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    location: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5


class ScheduleClassRule(Body, frozen=True, kw_only=True):
    days_of_week: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=7)]], msgspec.Meta(min_length=1, max_length=7)]
    start_time: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    duration_minutes: Annotated[int, msgspec.Meta(
        ge=15, le=1440, description="at most the centre's longest session (12 hours unless it says otherwise)")] = 60
    first_date: date
    weeks: Annotated[int, msgspec.Meta(ge=1, le=26)] = 12
    time_zone: Text | None = None
    title: Text
    mode: SessionMode
    meeting_link: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    location: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5


Answer = Annotated[str, msgspec.Meta(max_length=5000)]
Answers = Annotated[dict[Annotated[str, msgspec.Meta(min_length=1, max_length=40)], Answer],
                    msgspec.Meta(max_length=100)]
Feedback = Annotated[str, msgspec.Meta(max_length=2000)]


class PublishExercise(Body, frozen=True, kw_only=True):
    title: Text
    course_id: Ref
    exercise_type: ExerciseType
    difficulty: Difficulty = Difficulty.MEDIUM
    questions: Annotated[list[Question], msgspec.Meta(min_length=1, max_length=100)]
    instructions: LongText | None = None
    time_limit_minutes: Annotated[int, msgspec.Meta(ge=1, le=600)] | None = None


class RetireExercise(Body, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class AssignExercise(Body, frozen=True):
    exercise_id: UUID
    student_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=50)] | None = None
    """Omitted: every student enrolled in the session."""


class ReportProgress(Body, frozen=True):
    percent: int


class SubmitAnswers(Body, frozen=True):
    answers: Answers


class GradeWork(Body, frozen=True):
    score: Annotated[float, msgspec.Meta(ge=0)]
    feedback: Feedback | None = None


class AssignHomework(Body, frozen=True):
    student_id: UUID
    title: Text
    exercise_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=20)]
    due_at: datetime
    session_id: UUID | None = None
    teacher_id: UUID | None = None
    notes: LongText | None = None


class SubmitHomework(Body, frozen=True):
    answers: Annotated[dict[UUID, Answers], msgspec.Meta(max_length=20)]


Level = Annotated[int, msgspec.Meta(ge=0, le=12, description="0 is Kindergarten, 12 is Year 12")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class AssessSubject(Body, frozen=True):
    course_id: Ref
    school_grade: Level
    working_level: Level
    notes: LongText | None = None


class ChangeWorkingLevel(Body, frozen=True):
    course_id: Ref
    level: Level
    change_type: LevelChangeType
    reason: Reason


class AssignContent(Body, frozen=True):
    course_id: Ref
    reason: Reason
    lesson_id: Ref | None = None
    exercise_id: Ref | None = None
    session_id: UUID | None = None


class WithdrawContentAssignment(Body, frozen=True):
    reason: Reason


class ScheduleSeries(ScheduleClassRule, frozen=True, kw_only=True):
    tutor_id: UUID | None = None
    students: Annotated[list[EnrolStudent], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list)
