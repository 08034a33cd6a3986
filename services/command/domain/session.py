"""A tutoring session: one tutor, up to a handful of students, each on their own work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
    applies,
)
from shared.events import (
    EXTENSION_MINUTES,
    SESSION_CAPACITY,
    AttendanceReminderSent,
    SessionCancelled,
    SessionEnded,
    SessionExtended,
    SessionMode,
    SessionModeChanged,
    SessionReminderSent,
    SessionRescheduled,
    SessionScheduled,
    SessionStarted,
    SessionStatus,
    StudentEnrolled,
    StudentLessonChanged,
    StudentRemoved,
)
from shared.tenancy import Actor

DEFAULT_CAPACITY = 5
LONGEST_SESSION = timedelta(hours=12)
"""How long a session may last unless its centre says otherwise."""
"""Minutes a live session may be extended by at once."""


@dataclass
class Enrolment:
    """A student on the roster, on their own course and lesson."""

    student_id: UUID
    course_id: str | None
    lesson_id: str | None


class Session(Aggregate):
    tutor_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    mode: SessionMode
    capacity: int
    status: SessionStatus
    roster: dict[UUID, Enrolment]

    @classmethod
    def schedule(
        cls,
        session_id: UUID,
        *,
        by: Actor,
        tutor_id: UUID,
        title: str,
        starts_at: datetime,
        ends_at: datetime,
        time_zone: str,
        mode: SessionMode,
        meeting_link: str | None = None,
        location: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        class_id: UUID | None = None,
        longest: timedelta = LONGEST_SESSION,
    ) -> Session:
        """``longest``: how long a session may last at the centre."""
        title = values.text(title, "title", values.TITLE, what="title")
        _check_times(starts_at, ends_at, longest)
        time_zone = known_time_zone(time_zone)
        values.whole(capacity, "capacity", *SESSION_CAPACITY, unit=" students")
        meeting_link, location = _place(mode, meeting_link, location)
        session = cls(session_id, by.centre_id)
        session._record(
            SessionScheduled,
            by,
            session_id=session_id,
            title=title,
            tutor_id=tutor_id,
            starts_at=starts_at,
            ends_at=ends_at,
            time_zone=time_zone,
            mode=mode,
            meeting_link=meeting_link,
            location=location,
            capacity=capacity,
            class_id=class_id,
        )
        return session

    def reschedule(
        self,
        *,
        by: Actor,
        starts_at: datetime,
        ends_at: datetime,
        reason: str | None = None,
        longest: timedelta = LONGEST_SESSION,
    ) -> None:
        self._require_status(SessionStatus.SCHEDULED, "reschedule")
        _check_times(starts_at, ends_at, longest)
        reason = values.free_text(reason, "reason", values.REASON)
        self._record(
            SessionRescheduled,
            by,
            session_id=self.id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
        )

    def change_mode(
        self,
        *,
        by: Actor,
        mode: SessionMode,
        meeting_link: str | None = None,
        location: str | None = None,
    ) -> None:
        if self.status not in (SessionStatus.SCHEDULED, SessionStatus.LIVE):
            raise InvalidTransition(f"cannot change the mode of a session that is {self.status}")
        meeting_link, location = _place(mode, meeting_link, location)
        self._record(
            SessionModeChanged,
            by,
            session_id=self.id,
            mode=mode,
            meeting_link=meeting_link,
            location=location,
        )

    def extend(self, *, by: Actor, minutes: int, longest: timedelta = LONGEST_SESSION) -> None:
        self._require_status(SessionStatus.LIVE, "extend")
        values.whole(minutes, "minutes", *EXTENSION_MINUTES, unit=" minutes")
        ends_at = values.moment(self.ends_at + timedelta(minutes=minutes), "minutes")
        if ends_at - self.starts_at > longest:
            raise InvalidValue(f"a session lasts at most {_duration(longest)}", field="minutes")
        self._record(SessionExtended, by, session_id=self.id, minutes=minutes, ends_at=ends_at)

    def start(self, *, by: Actor) -> None:
        self._require_status(SessionStatus.SCHEDULED, "start")
        self._record(SessionStarted, by, session_id=self.id)

    def end(self, *, by: Actor) -> None:
        self._require_status(SessionStatus.LIVE, "end")
        self._record(SessionEnded, by, session_id=self.id)

    def cancel(self, *, by: Actor, reason: str) -> None:
        reason = values.reason(reason)
        self._require_status(SessionStatus.SCHEDULED, "cancel")
        self._record(SessionCancelled, by, session_id=self.id, reason=reason)

    # --- what timers do (recorded by SYSTEM) ----------------------------------------------

    def remind(self, *, by: Actor, starts_at: datetime, minutes_before: int) -> bool:
        """The reminder set for a start at ``starts_at`` is due: its people are reminded.
        ``False`` (nothing recorded) when it no longer applies: the session is not SCHEDULED
        any more, was moved to another start, or was reminded of this start already."""
        if (
            self.status is not SessionStatus.SCHEDULED
            or starts_at != self.starts_at
            or self.reminded_for == starts_at
        ):
            return False
        self._record(
            SessionReminderSent,
            by,
            session_id=self.id,
            starts_at=starts_at,
            minutes_before=minutes_before,
        )
        return True

    def complete_overdue(self, *, by: Actor, ends_at: datetime) -> bool:
        """A session still LIVE a while after ``ends_at`` is completed (SessionEnded).
        ``False`` when it was ended already or runs longer now (extended: ``ends_at`` moved)."""
        if self.status is not SessionStatus.LIVE or ends_at != self.ends_at:
            return False
        self.end(by=by)
        return True

    def remind_attendance(self, unmarked: Iterable[UUID], *, by: Actor) -> bool:
        """After the session, the tutor is reminded of the enrolled students still without an
        attendance mark; ``False`` when every one has one, or the reminder was sent."""
        students = sorted(set(unmarked) & set(self.roster))
        if self.status is not SessionStatus.COMPLETED or self.attendance_reminded or not students:
            return False
        self._record(AttendanceReminderSent, by, session_id=self.id, unmarked_student_ids=students)
        return True

    def enrol(
        self,
        student_id: UUID,
        *,
        by: Actor,
        course_id: str | None = None,
        lesson_id: str | None = None,
    ) -> None:
        course_id = values.ref(course_id, "course_id")
        lesson_id = values.ref(lesson_id, "lesson_id")
        if self.status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
            raise InvalidTransition(f"cannot enrol into a {self.status} session")
        if student_id in self.roster:
            raise RuleViolated("the student is already enrolled in this session")
        if len(self.roster) >= self.capacity:
            raise RuleViolated(f"the session is full ({self.capacity} students)")
        self._record(
            StudentEnrolled,
            by,
            session_id=self.id,
            student_id=student_id,
            course_id=course_id,
            lesson_id=lesson_id,
        )

    def remove(self, student_id: UUID, *, by: Actor, reason: str | None = None) -> None:
        reason = values.free_text(reason, "reason", values.REASON)
        if student_id not in self.roster:
            raise RuleViolated("the student is not enrolled in this session")
        if self.status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
            raise InvalidTransition(f"cannot change the roster of a {self.status} session")
        self._record(StudentRemoved, by, session_id=self.id, student_id=student_id, reason=reason)

    def change_lesson(
        self,
        student_id: UUID,
        *,
        by: Actor,
        lesson_id: str,
        course_id: str | None = None,
        reason: str | None = None,
        assignment_id: UUID | None = None,
    ) -> bool:
        """Move an enrolled student to another lesson (of their course, or of ``course_id``)
        while the session is SCHEDULED or LIVE; ``False`` if they are on that lesson already."""
        lesson = values.ref(lesson_id, "lesson_id")
        course = values.ref(course_id, "course_id")
        reason = values.free_text(reason, "reason", values.NOTE)
        if self.status not in (SessionStatus.SCHEDULED, SessionStatus.LIVE):
            raise InvalidTransition(f"cannot change a lesson in a {self.status} session")
        enrolment = self.roster.get(student_id)
        if enrolment is None:
            raise RuleViolated("the student is not enrolled in this session")
        course = course or enrolment.course_id
        if (course, lesson) == (enrolment.course_id, enrolment.lesson_id):
            return False
        self._record(
            StudentLessonChanged,
            by,
            session_id=self.id,
            student_id=student_id,
            course_id=course,
            lesson_id=lesson,
            previous_course_id=enrolment.course_id,
            previous_lesson_id=enrolment.lesson_id,
            reason=reason,
            assignment_id=assignment_id,
        )
        return True

    def lesson_of(self, student_id: UUID) -> tuple[str | None, str | None]:
        """The (course, lesson) an enrolled student works on in this session."""
        enrolment = self.roster[student_id]
        return enrolment.course_id, enrolment.lesson_id

    def is_enrolled(self, student_id: UUID) -> bool:
        return student_id in self.roster

    @property
    def is_live(self) -> bool:
        return self.status is SessionStatus.LIVE

    def _require_status(self, expected: SessionStatus, verb: str) -> None:
        if self.status is not expected:
            raise InvalidTransition(f"cannot {verb} a session that is {self.status}")

    def _blank(self) -> None:
        self.roster = {}
        self.reminded_for: datetime | None = None
        """The start the session's people were last reminded of."""
        self.attendance_reminded = False
        self.removed_students: set[UUID] = set()
        """Students who were enrolled and were removed (their seats keep their history)."""

    @applies(SessionScheduled)
    def _scheduled(self, event: SessionScheduled) -> None:
        self.roster = {}
        self.tutor_id = event.tutor_id
        self.title = event.title
        self.starts_at = event.starts_at
        self.ends_at = event.ends_at
        self.time_zone = event.time_zone
        self.mode = event.mode
        self.capacity = event.capacity
        self.status = SessionStatus.SCHEDULED

    @applies(SessionRescheduled)
    def _rescheduled(self, event: SessionRescheduled) -> None:
        self.starts_at, self.ends_at = event.starts_at, event.ends_at

    @applies(SessionModeChanged)
    def _mode_changed(self, event: SessionModeChanged) -> None:
        self.mode = event.mode

    @applies(SessionExtended)
    def _extended(self, event: SessionExtended) -> None:
        self.ends_at = event.ends_at

    @applies(SessionStarted)
    def _started(self, event: SessionStarted) -> None:
        self.status = SessionStatus.LIVE

    @applies(SessionEnded)
    def _ended(self, event: SessionEnded) -> None:
        self.status = SessionStatus.COMPLETED

    @applies(SessionCancelled)
    def _cancelled(self, event: SessionCancelled) -> None:
        self.status = SessionStatus.CANCELLED

    @applies(SessionReminderSent)
    def _reminded(self, event: SessionReminderSent) -> None:
        self.reminded_for = event.starts_at

    @applies(AttendanceReminderSent)
    def _attendance_reminded(self, event: AttendanceReminderSent) -> None:
        self.attendance_reminded = True

    @applies(StudentEnrolled)
    def _enrolled(self, event: StudentEnrolled) -> None:
        self.roster[event.student_id] = Enrolment(
            event.student_id, event.course_id, event.lesson_id
        )
        self.removed_students.discard(event.student_id)

    @applies(StudentLessonChanged)
    def _lesson_changed(self, event: StudentLessonChanged) -> None:
        enrolment = self.roster[event.student_id]
        enrolment.course_id, enrolment.lesson_id = event.course_id, event.lesson_id

    @applies(StudentRemoved)
    def _removed(self, event: StudentRemoved) -> None:
        del self.roster[event.student_id]
        self.removed_students.add(event.student_id)


def _check_times(starts_at: datetime, ends_at: datetime, longest: timedelta) -> None:
    values.moment(starts_at, "starts_at")
    values.moment(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise InvalidValue("a session must end after it starts", field="ends_at")
    if ends_at - starts_at > longest:
        raise InvalidValue(f"a session lasts at most {_duration(longest)}", field="ends_at")


def _duration(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if rest:
        return f"{minutes} minutes"
    return f"{hours} hour{'s' if hours != 1 else ''}"


def known_time_zone(time_zone: str, field: str = "time_zone") -> str:
    """An IANA time zone this machine knows (``Australia/Sydney``)."""
    values.text(time_zone, field, values.TITLE, what="time zone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"unknown time zone {time_zone!r}", field=field) from None
    return time_zone


def _place(
    mode: SessionMode, meeting_link: str | None, location: str | None
) -> tuple[str | None, str | None]:
    """Where a session of ``mode`` happens: ONLINE needs a link, PHYSICAL a room, HYBRID both."""
    meeting_link = values.free_text(meeting_link, "meeting_link", values.LINK, lines=False)
    location = values.free_text(location, "location", values.TITLE, lines=False)
    needs_link = mode in (SessionMode.ONLINE, SessionMode.HYBRID)
    needs_location = mode in (SessionMode.PHYSICAL, SessionMode.HYBRID)
    if needs_link and not (meeting_link and meeting_link.startswith(("https://", "http://"))):
        raise InvalidValue(f"a {mode} session needs a meeting link URL", field="meeting_link")
    if needs_location and not (location and location.strip()):
        raise InvalidValue(f"a {mode} session needs a location", field="location")
    return (
        meeting_link if needs_link else None,
        location.strip() if needs_location and location else None,
    )
