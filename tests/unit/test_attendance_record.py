"""A student's attendance record notices absences that repeat, on the write side."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.command.domain.attendance import AttendanceRecord, attendance_record_id
from services.command.domain.session import Session
from shared.events import (
    ATTENDANCE_RECORD_SESSIONS,
    AttendanceStatus,
    RepeatedAbsencesNoticed,
    StudentAttendanceRecorded,
)
from tests.unit.test_session import START, TUTOR, scheduled

ABSENT, PRESENT, EXCUSED = (
    AttendanceStatus.ABSENT,
    AttendanceStatus.PRESENT,
    AttendanceStatus.EXCUSED,
)
ANNA = uuid4()


def day(n: int) -> Session:
    """A session ``n`` days after the first."""
    starts = START + timedelta(days=n)
    return scheduled(title=f"Day {n}", starts_at=starts, ends_at=starts + timedelta(hours=1))


def fresh() -> AttendanceRecord:
    return AttendanceRecord.of(ANNA, "alpha")


def notices(record: AttendanceRecord) -> list[RepeatedAbsencesNoticed]:
    return [e for e in record.collect_events() if isinstance(e, RepeatedAbsencesNoticed)]


def test_a_second_absence_in_a_row_is_noticed_and_each_one_after_it() -> None:
    record = fresh()
    first, second, third = day(0), day(1), day(2)
    assert record.id == attendance_record_id(ANNA)
    assert record.keep(first, ABSENT, by=TUTOR) == 0
    assert notices(record) == []
    assert record.keep(second, ABSENT, by=TUTOR) == 2
    (notice,) = notices(record)
    assert (notice.student_id, notice.session_id, notice.absences_in_a_row) == (
        ANNA,
        second.id,
        2,
    )
    assert [(s.session_id, s.title, s.starts_at) for s in notice.sessions] == [
        (second.id, "Day 1", second.starts_at),
        (first.id, "Day 0", first.starts_at),
    ]
    assert record.keep(third, ABSENT, by=TUTOR) == 3
    assert [n.absences_in_a_row for n in notices(record)] == [3]


def test_a_first_absence_or_one_before_a_session_attended_is_not_noticed() -> None:
    record = fresh()
    earlier, attended, later = day(0), day(2), day(3)
    record.keep(later, ABSENT, by=TUTOR)
    record.keep(attended, PRESENT, by=TUTOR)
    assert record.keep(earlier, ABSENT, by=TUTOR) == 0  # the latest marked was attended
    assert notices(record) == []
    # An excused session breaks the run too.
    record.keep(day(4), EXCUSED, by=TUTOR)
    assert record.keep(day(5), ABSENT, by=TUTOR) == 0
    assert notices(record) == []


def test_a_session_marked_late_counts_where_it_starts() -> None:
    record = fresh()
    earlier, later = day(0), day(1)
    record.keep(later, ABSENT, by=TUTOR)
    assert record.keep(earlier, ABSENT, by=TUTOR) == 2
    (notice,) = notices(record)
    assert notice.session_id == earlier.id
    assert [s.session_id for s in notice.sessions] == [later.id, earlier.id]


def test_correcting_an_absence_and_making_it_again_is_noticed_once() -> None:
    record = fresh()
    first, second = day(0), day(1)
    record.keep(first, ABSENT, by=TUTOR)
    record.keep(second, ABSENT, by=TUTOR)
    assert len(notices(record)) == 1
    assert record.keep(second, EXCUSED, by=TUTOR) == 0
    assert record.keep(second, ABSENT, by=TUTOR) == 0
    events = record.collect_events()
    assert [type(e) for e in events] == [StudentAttendanceRecorded, StudentAttendanceRecorded]
    # The same mark again records nothing at all.
    record.keep(second, ABSENT, by=TUTOR)
    assert not record.has_changes
    # Replayed from its history, the record still knows the absence was noticed.
    history = [*_history(first, second)]
    replayed = AttendanceRecord.project(None, history)
    assert replayed is not None
    assert replayed.keep(second, EXCUSED, by=TUTOR) == 0
    assert replayed.keep(second, ABSENT, by=TUTOR) == 0
    assert notices(replayed) == []


def _history(
    first: Session, second: Session
) -> list[StudentAttendanceRecorded | RepeatedAbsencesNoticed]:
    record = fresh()
    record.keep(first, ABSENT, by=TUTOR)
    record.keep(second, ABSENT, by=TUTOR)
    return [
        e
        for e in record.collect_events()
        if isinstance(e, StudentAttendanceRecorded | RepeatedAbsencesNoticed)
    ]


def test_the_record_keeps_the_latest_sessions_only() -> None:
    record = fresh()
    sessions = [day(n) for n in range(ATTENDANCE_RECORD_SESSIONS + 3)]
    streaks = [record.keep(s, ABSENT, by=TUTOR) for s in sessions]
    assert streaks[:3] == [0, 2, 3]
    assert streaks[-1] == ATTENDANCE_RECORD_SESSIONS
    assert len(record.marks) == ATTENDANCE_RECORD_SESSIONS
    assert [m.session_id for m in record.latest()] == [
        s.id for s in reversed(sessions[-ATTENDANCE_RECORD_SESSIONS:])
    ]
    record.collect_events()
    # A session older than every one kept cannot change the latest marks: not kept.
    assert record.keep(day(-1), PRESENT, by=TUTOR) == 0
    assert not record.has_changes
    # A kept session corrected: the run is what follows it.
    assert record.keep(sessions[-3], PRESENT, by=TUTOR) == 0
    assert [m.session_id for m in record.absences_in_a_row()] == [
        sessions[-1].id,
        sessions[-2].id,
    ]


def test_a_moved_session_is_kept_at_its_new_start() -> None:
    record = fresh()
    first, second = day(0), day(2)
    record.keep(first, ABSENT, by=TUTOR)
    record.keep(second, PRESENT, by=TUTOR)
    first.reschedule(
        by=TUTOR, starts_at=START + timedelta(days=3), ends_at=START + timedelta(days=3, hours=1)
    )
    assert record.keep(first, ABSENT, by=TUTOR) == 0  # same status, new start: kept, one absence
    assert record.latest()[0].session_id == first.id
    fourth = day(4)
    assert record.keep(fourth, ABSENT, by=TUTOR) == 2
    assert [m.session_id for m in record.absences_in_a_row()] == [fourth.id, first.id]
