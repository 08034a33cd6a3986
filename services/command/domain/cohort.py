"""A class cohort: students who meet as a group with one teacher."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
    applies,
)
from services.command.domain.session import Session
from shared.events import (
    ClassCancelled,
    ClassCreated,
    ClassMemberAdded,
    ClassMemberRemoved,
    ClassSessionsScheduled,
    ClassUpdated,
    WeeklyRule,
)
from shared.tenancy import Actor

MAX_CLASS = 200


class ClassCohort(Aggregate):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int
    members: set[UUID]
    cancelled: bool

    @classmethod
    def create(cls, class_id: UUID, *, by: Actor, name: str, subject: str, teacher_id: UUID,
               capacity: int = 20) -> ClassCohort:
        cohort = cls(class_id, by.centre_id)
        cohort._record(ClassCreated, by, **_checked(name, subject, capacity), teacher_id=teacher_id)
        return cohort

    def update(self, *, by: Actor, name: str, subject: str, teacher_id: UUID, capacity: int) -> None:
        self._require_open("update")
        if capacity < len(self.members):
            raise InvalidValue(f"the class already has {len(self.members)} members", field="capacity")
        self._record(ClassUpdated, by, **_checked(name, subject, capacity), teacher_id=teacher_id)

    def cancel(self, *, by: Actor, reason: str) -> None:
        self._require_open("cancel")
        if not reason.strip():
            raise InvalidValue("say why the class is cancelled", field="reason")
        self._record(ClassCancelled, by, reason=reason.strip())

    def add(self, student_id: UUID, *, by: Actor) -> None:
        self._require_open("add members to")
        if student_id in self.members:
            raise RuleViolated("the student is already in this class")
        if len(self.members) >= self.capacity:
            raise RuleViolated(f"the class is full ({self.capacity} students)")
        self._record(ClassMemberAdded, by, student_id=student_id)

    def remove(self, student_id: UUID, *, by: Actor) -> None:
        self._require_open("remove members from")
        if student_id not in self.members:
            raise RuleViolated("the student is not in this class")
        self._record(ClassMemberRemoved, by, student_id=student_id)

    def sessions_scheduled(self, sessions: list[Session], *, by: Actor, rule: WeeklyRule | None = None) -> None:
        """Record that these sessions belong to the class (they are saved in the same commit)."""
        self._require_open("schedule sessions for")
        self._record(ClassSessionsScheduled, by, session_ids=[s.id for s in sessions],
                     starts=[s.starts_at for s in sessions], rule=rule)

    def has_session_at(self, starts_at: datetime) -> bool:
        return starts_at in self.session_starts

    def _require_open(self, verb: str) -> None:
        if self.cancelled:
            raise InvalidTransition(f"cannot {verb} a cancelled class")

    def _blank(self) -> None:
        self.members = set()
        self.cancelled = False
        self.session_starts: set[datetime] = set()

    @applies(ClassCreated, ClassUpdated)
    def _described(self, event: ClassCreated | ClassUpdated) -> None:
        self.name, self.subject = event.name, event.subject
        self.teacher_id, self.capacity = event.teacher_id, event.capacity

    @applies(ClassSessionsScheduled)
    def _sessions(self, event: ClassSessionsScheduled) -> None:
        self.session_starts |= set(event.starts)

    @applies(ClassCancelled)
    def _cancelled(self, event: ClassCancelled) -> None:
        self.cancelled = True

    @applies(ClassMemberAdded)
    def _added(self, event: ClassMemberAdded) -> None:
        self.members.add(event.student_id)

    @applies(ClassMemberRemoved)
    def _removed(self, event: ClassMemberRemoved) -> None:
        self.members.discard(event.student_id)


def _checked(name: str, subject: str, capacity: int) -> dict[str, Any]:
    if not name.strip():
        raise InvalidValue("a class needs a name", field="name")
    if not subject.strip():
        raise InvalidValue("a class needs a subject", field="subject")
    if not 1 <= capacity <= MAX_CLASS:
        raise InvalidValue(f"capacity must be 1 to {MAX_CLASS}", field="capacity")
    return {"name": name.strip(), "subject": subject.strip(), "capacity": capacity}


MAX_WEEKS = 26


def weekly_starts(rule: WeeklyRule) -> list[tuple[datetime, datetime]]:
    """The (start, end) of every session a weekly rule asks for, in UTC order."""
    if not rule.days_of_week or any(d not in range(1, 8) for d in rule.days_of_week):
        raise InvalidValue("days of week are 1 (Monday) to 7 (Sunday)", field="daysOfWeek")
    if not 1 <= rule.weeks <= MAX_WEEKS:
        raise InvalidValue(f"a rule covers 1 to {MAX_WEEKS} weeks", field="weeks")
    if not 15 <= rule.duration_minutes <= 12 * 60:
        raise InvalidValue("a session lasts 15 minutes to 12 hours", field="durationMinutes")
    try:
        hour, minute = (int(part) for part in rule.start_time.split(":"))
        local = time(hour, minute)
    except ValueError:
        raise InvalidValue("the start time is HH:MM", field="startTime") from None
    try:
        zone = ZoneInfo(rule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"unknown time zone {rule.time_zone!r}", field="timeZone") from None
    days = set(rule.days_of_week)
    slots = []
    for offset in range(rule.weeks * 7):
        day: date = rule.first_date + timedelta(days=offset)
        if day.isoweekday() in days:
            starts = datetime.combine(day, local, zone)
            slots.append((starts, starts + timedelta(minutes=rule.duration_minutes)))
    return slots
