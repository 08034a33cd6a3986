"""A tutor's timetable: the time each of their sessions takes up, to warn about overlaps.

The timetable is kept one week at a time (weeks start on Monday, UTC), each week its own small
aggregate: a session is booked in every week it touches, so two sessions that overlap always
share a week, and two commands booking them at the same moment conflict on that week's
version (the loser is retried and sees the other's booking). Past weeks are never loaded
again, so a tutor's timetable stays small however long they teach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5

from services.command.domain.aggregate import Aggregate, RuleViolated, applies
from services.command.domain.session import Session
from shared.events import (
    TimetableBooking,
    TimetableSessionBooked,
    TimetableSessionMoved,
    TimetableSessionReleased,
)
from shared.tenancy import Actor

_WEEK = timedelta(days=7)
_INSTANT = timedelta(microseconds=1)


def timetable_week_id(tutor_id: UUID, week_of: date) -> UUID:
    return uuid5(tutor_id, f"timetable:{week_of.isoformat()}")


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of the week ``moment`` falls in."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def weeks_touched(starts_at: datetime, ends_at: datetime) -> list[date]:
    """Every week that a session from ``starts_at`` to ``ends_at`` (exclusive) touches."""
    first, last = week_of(starts_at), week_of(ends_at - _INSTANT)
    return [first + _WEEK * n for n in range((last - first) // _WEEK + 1)]


def booking_of(session: Session) -> TimetableBooking:
    return TimetableBooking(
        session_id=session.id,
        title=session.title,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
    )


class TimetableWeek(Aggregate):
    """The sessions of one tutor that take up time in one week."""

    tutor_id: UUID
    week_of: date
    bookings: dict[UUID, TimetableBooking]

    @classmethod
    def of(cls, tutor_id: UUID, week: date, centre_id: str) -> TimetableWeek:
        """The week as it is before anything is booked in it."""
        timetable = cls(timetable_week_id(tutor_id, week), centre_id)
        timetable.tutor_id, timetable.week_of = tutor_id, week
        return timetable

    def book(self, booking: TimetableBooking, *, by: Actor) -> None:
        """Take up the session's time in this week; a session already booked moves instead."""
        current = self.bookings.get(booking.session_id)
        if current is None:
            self._record(
                TimetableSessionBooked,
                by,
                tutor_id=self.tutor_id,
                week_of=self.week_of,
                booking=booking,
            )
        elif (current.starts_at, current.ends_at) != (booking.starts_at, booking.ends_at):
            self._record(TimetableSessionMoved, by, booking=booking)

    def release(self, session_id: UUID, *, by: Actor, reason: str) -> None:
        booking = self.bookings.get(session_id)
        if booking is None:
            raise RuleViolated("the session takes up no time in this week of the timetable")
        self._record(TimetableSessionReleased, by, booking=booking, reason=reason)

    def overlapping(self, starts_at: datetime, ends_at: datetime) -> list[TimetableBooking]:
        return [
            b for b in self.bookings.values() if b.starts_at < ends_at and starts_at < b.ends_at
        ]

    def _blank(self) -> None:
        self.bookings = {}

    @applies(TimetableSessionBooked)
    def _booked(self, event: TimetableSessionBooked) -> None:
        self.tutor_id, self.week_of = event.tutor_id, event.week_of
        self.bookings[event.booking.session_id] = event.booking

    @applies(TimetableSessionMoved)
    def _moved(self, event: TimetableSessionMoved) -> None:
        self.bookings[event.booking.session_id] = event.booking

    @applies(TimetableSessionReleased)
    def _released(self, event: TimetableSessionReleased) -> None:
        del self.bookings[event.booking.session_id]


@dataclass(frozen=True)
class Overlap:
    """A session being scheduled or moved (``session_id``) overlaps another of its tutor."""

    session_id: UUID
    other: TimetableBooking


class TutorTimetable:
    """The weeks of one tutor's timetable that a command touches, loaded together.

    It follows the tutor's sessions: a scheduled session is booked, a moved or extended one
    moves, a cancelled one gives its time back. Booking never refuses: an overlap is a warning
    for the person scheduling, who may mean it (a workshop next to a live Q&A).
    """

    def __init__(self, tutor_id: UUID, weeks: Iterable[TimetableWeek]) -> None:
        self.tutor_id = tutor_id
        self._weeks = {week.week_of: week for week in weeks}

    @staticmethod
    def weeks_needed(*times: tuple[datetime, datetime]) -> list[date]:
        """The weeks to load for sessions at these (start, end) times."""
        return sorted({week for starts, ends in times for week in weeks_touched(starts, ends)})

    @property
    def weeks(self) -> list[TimetableWeek]:
        return list(self._weeks.values())

    def book(self, session: Session, *, by: Actor) -> list[Overlap]:
        """Book a newly scheduled session (or follow one that moved); its overlaps, if any."""
        self._require_tutor_of(session)
        overlaps = self.overlaps(session)
        touched = weeks_touched(session.starts_at, session.ends_at)
        for week, timetable in self._weeks.items():
            if week not in touched and session.id in timetable.bookings:
                timetable.release(session.id, by=by, reason="moved to another week")
        booking = booking_of(session)
        for week in touched:
            self._week(week).book(booking, by=by)
        return overlaps

    def release(self, session: Session, *, by: Actor) -> None:
        """Give back the time of a cancelled session."""
        self._require_tutor_of(session)
        for timetable in self._weeks.values():
            if session.id in timetable.bookings:
                timetable.release(session.id, by=by, reason=f"the session is {session.status}")

    def overlaps(self, session: Session) -> list[Overlap]:
        """The tutor's other sessions that overlap ``session``, earliest first."""
        others: dict[UUID, TimetableBooking] = {}
        for week in weeks_touched(session.starts_at, session.ends_at):
            for other in self._week(week).overlapping(session.starts_at, session.ends_at):
                if other.session_id != session.id:
                    others[other.session_id] = other
        ordered = sorted(others.values(), key=lambda b: (b.starts_at, str(b.session_id)))
        return [Overlap(session.id, other) for other in ordered]

    def _week(self, week: date) -> TimetableWeek:
        try:
            return self._weeks[week]
        except KeyError:
            raise LookupError(f"the week of {week} of the timetable is not loaded") from None

    def _require_tutor_of(self, session: Session) -> None:
        if session.tutor_id != self.tutor_id:
            raise RuleViolated("the session belongs to another tutor's timetable")
