"""Groups of statuses, orders and scales that more than one part of tutorpulse speaks of.

The domain, the HTTP schemas and the read side name these instead of spelling the statuses out
again: "an open help request" or "unfinished work" means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, NamedTuple

from shared.events.catch_ups import CatchUpStatus
from shared.events.exercises import WorkStatus
from shared.events.homework import HomeworkStatus
from shared.events.seats import AttendanceStatus, HelpPriority, HelpRequestStatus


class ClassStatus(StrEnum):
    """A class cohort runs until it is cancelled."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class MembershipStatus(StrEnum):
    """A student's place in a class."""

    ACTIVE = "ACTIVE"
    DROPPED = "DROPPED"


class ContentAssignmentStatus(StrEnum):
    """A content assignment is ACTIVE until another for its course replaces it (SUPERSEDED)
    or it is taken back (WITHDRAWN)."""

    ACTIVE = "ACTIVE"
    SUPERSEDED = "SUPERSEDED"
    WITHDRAWN = "WITHDRAWN"


OPEN_HELP_REQUESTS: Final = frozenset(
    {HelpRequestStatus.PENDING, HelpRequestStatus.ACKNOWLEDGED, HelpRequestStatus.IN_PROGRESS}
)
"""A help request the tutor still has to answer or finish."""

OPEN_CATCH_UPS: Final = frozenset({CatchUpStatus.PENDING, CatchUpStatus.IN_PROGRESS})
"""Make-up work still owed."""

UNFINISHED_WORK: Final = frozenset({WorkStatus.ASSIGNED, WorkStatus.IN_PROGRESS})
"""Exercise work the student has not handed in yet."""

OPEN_HOMEWORK: Final = frozenset({HomeworkStatus.NOT_STARTED, HomeworkStatus.IN_PROGRESS})
"""Homework not handed in yet: overdue once its due time has passed."""

HELP_PRIORITIES: Final = (
    HelpPriority.URGENT,
    HelpPriority.HIGH,
    HelpPriority.MEDIUM,
    HelpPriority.LOW,
)
"""Help priorities, the most urgent first."""

HELP_PRIORITY_RANK: Final[Mapping[str, int]] = {
    priority: rank for rank, priority in enumerate(HELP_PRIORITIES)
}
"""A priority's place among :data:`HELP_PRIORITIES` (0 is the most urgent)."""

ATTENDANCE_STATUSES: Final = tuple(AttendanceStatus)
"""Every attendance mark, in the order summaries list them."""

XP_PER_LEVEL: Final = 100
"""Experience points a student earns per level."""


class Bounds(NamedTuple):
    """The smallest and the largest whole number a value may take, both allowed."""

    low: int
    high: int


HELP_SLA_MINUTES: Final = Bounds(1, 24 * 60)
"""Within how many minutes a centre wants help requests of a priority answered."""

SESSION_MINUTES: Final = Bounds(15, 24 * 60)
"""How long a centre may let its sessions last, and how long a weekly rule's sessions may be."""

SESSION_CAPACITY: Final = Bounds(1, 50)
"""Students one session may hold."""

CLASS_CAPACITY: Final = Bounds(1, 200)
"""Students one class may hold."""

EXTENSION_MINUTES: Final = Bounds(1, 120)
"""Minutes a live session may be extended by at once."""

SERIES_WEEKS: Final = Bounds(1, 26)
"""Weeks a weekly rule may schedule at once."""

EXERCISE_TIME_LIMIT_MINUTES: Final = Bounds(1, 600)
"""The time limit an exercise may set."""

SESSION_REMINDER_MINUTES: Final = 15
"""How many minutes before a session starts its people are reminded, unless the centre says
otherwise (``CentreRemindersChanged``)."""

REMINDER_MINUTES: Final = Bounds(1, 7 * 24 * 60)
"""The lead time a centre may choose for session reminders."""
