"""A tutoring session: one tutor, up to a handful of students, each on their own work."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
    applies,
)
from shared.events import (
    SessionCancelled,
    SessionEnded,
    SessionExtended,
    SessionMode,
    SessionModeChanged,
    SessionRescheduled,
    SessionScheduled,
    SessionStarted,
    SessionStatus,
    StudentEnrolled,
    StudentRemoved,
)
from shared.tenancy import Actor

DEFAULT_CAPACITY = 5
MAX_CAPACITY = 50
LONGEST_SESSION = timedelta(hours=12)


class Session(Aggregate):
    tutor_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    mode: SessionMode
    capacity: int
    status: SessionStatus
    roster: dict[UUID, StudentEnrolled]

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
    ) -> Session:
        if not title.strip():
            raise InvalidValue("a session needs a title", field="title")
        _check_times(starts_at, ends_at)
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValue(f"unknown time zone {time_zone!r}", field="timeZone") from None
        if not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidValue(f"capacity must be 1 to {MAX_CAPACITY}", field="capacity")
        meeting_link, location = _place(mode, meeting_link, location)
        session = cls(session_id, by.centre_id)
        session._record(
            SessionScheduled,
            by,
            session_id=session_id,
            title=title.strip(),
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

    def reschedule(self, *, by: Actor, starts_at: datetime, ends_at: datetime,
                   reason: str | None = None) -> None:
        self._require_status(SessionStatus.SCHEDULED, "reschedule")
        _check_times(starts_at, ends_at)
        self._record(SessionRescheduled, by, session_id=self.id, starts_at=starts_at,
                     ends_at=ends_at, reason=reason)

    def change_mode(self, *, by: Actor, mode: SessionMode, meeting_link: str | None = None,
                    location: str | None = None) -> None:
        if self.status not in (SessionStatus.SCHEDULED, SessionStatus.LIVE):
            raise InvalidTransition(f"cannot change the mode of a session that is {self.status}")
        meeting_link, location = _place(mode, meeting_link, location)
        self._record(SessionModeChanged, by, session_id=self.id, mode=mode,
                     meeting_link=meeting_link, location=location)

    def extend(self, *, by: Actor, minutes: int) -> None:
        self._require_status(SessionStatus.LIVE, "extend")
        if not 1 <= minutes <= 120:
            raise InvalidValue("extend by 1 to 120 minutes", field="minutes")
        ends_at = self.ends_at + timedelta(minutes=minutes)
        if ends_at - self.starts_at > LONGEST_SESSION:
            raise InvalidValue("a session lasts at most 12 hours", field="minutes")
        self._record(SessionExtended, by, session_id=self.id, minutes=minutes, ends_at=ends_at)

    def start(self, *, by: Actor) -> None:
        self._require_status(SessionStatus.SCHEDULED, "start")
        self._record(SessionStarted, by, session_id=self.id)

    def end(self, *, by: Actor) -> None:
        self._require_status(SessionStatus.LIVE, "end")
        self._record(SessionEnded, by, session_id=self.id)

    def cancel(self, *, by: Actor, reason: str) -> None:
        if not reason.strip():
            raise InvalidValue("say why the session is cancelled", field="reason")
        self._require_status(SessionStatus.SCHEDULED, "cancel")
        self._record(SessionCancelled, by, session_id=self.id, reason=reason.strip())

    def enrol(
        self,
        student_id: UUID,
        *,
        by: Actor,
        course_id: str | None = None,
        lesson_id: str | None = None,
    ) -> None:
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
        if student_id not in self.roster:
            raise RuleViolated("the student is not enrolled in this session")
        if self.status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
            raise InvalidTransition(f"cannot change the roster of a {self.status} session")
        self._record(
            StudentRemoved, by, session_id=self.id, student_id=student_id, reason=reason
        )

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

    @applies(StudentEnrolled)
    def _enrolled(self, event: StudentEnrolled) -> None:
        self.roster[event.student_id] = event
        self.removed_students.discard(event.student_id)

    @applies(StudentRemoved)
    def _removed(self, event: StudentRemoved) -> None:
        del self.roster[event.student_id]
        self.removed_students.add(event.student_id)


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidValue("times must carry a UTC offset", field="startsAt")
    if ends_at <= starts_at:
        raise InvalidValue("a session must end after it starts", field="endsAt")
    if ends_at - starts_at > LONGEST_SESSION:
        raise InvalidValue("a session lasts at most 12 hours", field="endsAt")


def _place(mode: SessionMode, meeting_link: str | None, location: str | None) -> tuple[str | None, str | None]:
    """Where a session of ``mode`` happens: ONLINE needs a link, PHYSICAL a room, HYBRID both."""
    needs_link = mode in (SessionMode.ONLINE, SessionMode.HYBRID)
    needs_location = mode in (SessionMode.PHYSICAL, SessionMode.HYBRID)
    if needs_link and not (meeting_link and meeting_link.startswith(("https://", "http://"))):
        raise InvalidValue(f"a {mode} session needs a meeting link URL", field="meetingLink")
    if needs_location and not (location and location.strip()):
        raise InvalidValue(f"a {mode} session needs a location", field="location")
    return (meeting_link if needs_link else None,
            location.strip() if needs_location and location else None)
