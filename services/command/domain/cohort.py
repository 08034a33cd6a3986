"""A class cohort: students who meet as a group with one teacher."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from services.command.domain import values
from services.command.domain.aggregate import (
    Aggregate,
    InvalidTransition,
    InvalidValue,
    RuleViolated,
    applies,
)
from services.command.domain.session import LONGEST_SESSION, Session, known_time_zone
from shared.events import (
    CLASS_CAPACITY,
    SERIES_WEEKS,
    SESSION_MINUTES,
    ClassCancelled,
    ClassCreated,
    ClassMemberAdded,
    ClassMemberRemoved,
    ClassSessionsScheduled,
    ClassUpdated,
    WeeklyRule,
)
from shared.tenancy import Actor


class ClassCohort(Aggregate):
    name: str
    subject: str
    teacher_id: UUID
    capacity: int
    members: set[UUID]
    cancelled: bool

    @classmethod
    def create(
        cls,
        class_id: UUID,
        *,
        by: Actor,
        name: str,
        subject: str,
        teacher_id: UUID,
        capacity: int = 20,
    ) -> ClassCohort:
        cohort = cls(class_id, by.centre_id)
        cohort._record(ClassCreated, by, **_checked(name, subject, capacity), teacher_id=teacher_id)
        return cohort

    def update(
        self, *, by: Actor, name: str, subject: str, teacher_id: UUID, capacity: int
    ) -> None:
        self._require_open("update")
        if capacity < len(self.members):
            raise InvalidValue(
                f"the class already has {len(self.members)} members", field="capacity"
            )
        self._record(ClassUpdated, by, **_checked(name, subject, capacity), teacher_id=teacher_id)

    def cancel(self, *, by: Actor, reason: str) -> None:
        self._require_open("cancel")
        self._record(ClassCancelled, by, reason=values.reason(reason))

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

    def sessions_scheduled(
        self, sessions: list[Session], *, by: Actor, rule: WeeklyRule | None = None
    ) -> None:
        """Record that these sessions belong to the class (they are saved in the same commit)."""
        self._require_open("schedule sessions for")
        self._record(
            ClassSessionsScheduled,
            by,
            session_ids=[s.id for s in sessions],
            starts=[s.starts_at for s in sessions],
            rule=rule,
        )

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
    return {
        "name": values.text(name, "name", values.TITLE, what="class's name"),
        "subject": values.text(subject, "subject", values.TITLE, what="subject"),
        "capacity": values.whole(capacity, "capacity", *CLASS_CAPACITY, unit=" students"),
    }


_START_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def weekly_starts(
    rule: WeeklyRule, longest: timedelta = LONGEST_SESSION
) -> list[tuple[datetime, datetime]]:
    """The (start, end) of every session a weekly rule asks for, in UTC order. ``longest``: how
    long a session may last at the centre."""
    values.at_most(rule.days_of_week, "days_of_week", 7, "days")
    if not rule.days_of_week or any(
        isinstance(d, bool) or d not in range(1, 8) for d in rule.days_of_week
    ):
        raise InvalidValue("days of week are 1 (Monday) to 7 (Sunday)", field="days_of_week")
    values.whole(rule.weeks, "weeks", *SERIES_WEEKS, unit=" weeks")
    values.whole(
        rule.duration_minutes,
        "duration_minutes",
        SESSION_MINUTES.low,
        int(longest.total_seconds() // 60),
        unit=" minutes",
    )
    if not isinstance(rule.start_time, str) or not _START_TIME.fullmatch(rule.start_time):
        raise InvalidValue("the start time is HH:MM", field="start_time")
    local = time(int(rule.start_time[:2]), int(rule.start_time[3:]))
    zone = ZoneInfo(known_time_zone(rule.time_zone))
    first = values.day(rule.first_date, "first_date")
    days = set(rule.days_of_week)
    slots = []
    for offset in range(rule.weeks * 7):
        day: date = first + timedelta(days=offset)
        if day.isoweekday() in days:
            starts = datetime.combine(day, local, zone)
            slots.append((starts, starts + timedelta(minutes=rule.duration_minutes)))
    if slots[0][0] < values.EARLIEST or slots[-1][1] >= values.END_OF_TIME:
        raise InvalidValue(
            "the rule's sessions must fall in the years 2000 to 2100", field="first_date"
        )
    return slots
