"""The risk score: each trigger of the seed's table at its edge, the levels, the reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HomeworkStatus,
    SessionStatus,
    WorkStatus,
)
from shared.readmodels.documents import HomeworkSummary, Student, StudentSession, Work
from shared.readmodels.times import iso
from shared.readmodels.views import RiskLevel, risk_of
from shared.readmodels.views.risk import level_of

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def session(n: int, attendance: str | None, days_ago: float = 1.0) -> StudentSession:
    """Session ``n`` (a higher ``n`` starts later unless ``days_ago`` says otherwise)."""
    starts = NOW - timedelta(days=days_ago) + timedelta(minutes=n)
    return StudentSession(
        session_id=f"s{n:02d}",
        title=f"Session {n}",
        status=SessionStatus.COMPLETED,
        starts_at=iso(starts),
        ends_at=iso(starts + timedelta(hours=1)),
        enrolled=True,
        attendance=AttendanceStatus(attendance) if attendance else None,
    )


def marks(*statuses: str | None) -> dict[str, StudentSession]:
    """Sessions one day apart, the last one yesterday, marked so (oldest first)."""
    count = len(statuses)
    return {
        s.session_id: s
        for s in (session(i, st, days_ago=count - i) for i, st in enumerate(statuses))
    }


def student(
    sessions: dict[str, StudentSession] | None = None,
    homework: list[HomeworkSummary] | None = None,
    **changes: object,
) -> Student:
    return Student(
        student_id="ann",
        centre_id="c",
        sessions=sessions if sessions is not None else marks("PRESENT"),
        homework={h.homework_id: h for h in homework or []},
        **changes,  # type: ignore[arg-type]
    )


def homework(n: int, due_in: timedelta, status: str = "NOT_STARTED") -> HomeworkSummary:
    return HomeworkSummary(
        homework_id=f"h{n}",
        student_id="ann",
        teacher_id="t",
        title=f"Homework {n}",
        status=HomeworkStatus(status),
        due_at=iso(NOW + due_in),
        max_score=10,
        session_id=None,
        assigned_at=iso(NOW - 3 * DAY),
        submitted_at=None,
        on_time=None,
        auto_score=None,
        score=None,
        feedback=None,
        graded_at=None,
        xp_awarded=0,
    )


def scored(*percents: float, status: str = "AUTO_GRADED") -> dict[str, StudentSession]:
    """Yesterday's attended session with one exercise per score, scored in this order."""
    attended = session(0, "PRESENT")
    for i, percent in enumerate(percents):
        at = iso(NOW - DAY + timedelta(minutes=5 + i))
        attended.work[f"w{i}"] = Work(
            work_id=f"w{i}",
            exercise_id="e",
            title=f"Exercise {i}",
            exercise_type=ExerciseType.NUMERICAL,
            difficulty=Difficulty.EASY,
            max_score=20,
            auto_gradable=True,
            status=WorkStatus(status),
            assigned_at=at,
            assigned_by="t",
            submitted_at=at,
            score=percent / 5,
        )
    return {attended.session_id: attended}


def triggers(s: Student, now: datetime = NOW) -> list[tuple[str, int]]:
    return [(r.trigger.value, r.points) for r in risk_of(s, now).reasons]


def test_a_student_who_comes_and_does_well_is_low_with_no_reasons() -> None:
    risk = risk_of(student(scored(90, 80, 85)), NOW)
    assert (risk.score, risk.level, risk.reasons) == (0, RiskLevel.LOW, ())
    assert risk.as_json() == {"score": 0, "level": "LOW", "reasons": []}


def test_three_absences_in_a_row_count_and_two_do_not() -> None:
    assert triggers(student(marks("PRESENT", "ABSENT", "ABSENT"))) == []
    assert triggers(student(marks("PRESENT", "ABSENT", "ABSENT", "ABSENT"))) == [
        ("CONSECUTIVE_ABSENCES", 30)
    ]
    # Broken by an attended (or excused) session; unmarked sessions are not absences.
    assert triggers(student(marks("ABSENT", "ABSENT", "PRESENT", "ABSENT"))) == []
    assert triggers(student(marks("ABSENT", "ABSENT", "EXCUSED", "ABSENT", None))) == []
    assert "absent from the last 3 sessions" in (
        risk_of(student(marks("PRESENT", "ABSENT", "ABSENT", "ABSENT", None)), NOW)
        .reasons[0]
        .message
    )


def test_each_overdue_homework_adds_five_once_past_due_or_marked_overdue() -> None:
    due_now = homework(1, timedelta(0))  # due at this very moment: not past it yet
    assert triggers(student(homework=[due_now])) == []
    assert triggers(student(homework=[due_now]), NOW + timedelta(microseconds=1)) == [
        ("OVERDUE_HOMEWORK", 5)
    ]
    late = [homework(1, -DAY), homework(2, -2 * DAY, "IN_PROGRESS"), homework(3, DAY)]
    assert triggers(student(homework=late)) == [("OVERDUE_HOMEWORK", 5)] * 2
    # Handed in (even late) it no longer counts; marked overdue by the system it does, even
    # if the view's clock is behind the scheduler's.
    handed_in = [homework(1, -DAY, "SUBMITTED"), homework(2, -DAY, "GRADED")]
    assert triggers(student(homework=handed_in)) == []
    marked = student(homework=[homework(3, DAY)], overdue_homework={"h3": iso(NOW)})
    assert triggers(marked) == [("OVERDUE_HOMEWORK", 5)]
    assert risk_of(marked, NOW).reasons[0].message == "homework overdue: Homework 3"


def test_an_average_below_half_over_the_last_five_scores_adds_twenty() -> None:
    assert triggers(student(scored(50, 50, 50, 50, 50))) == []  # exactly half is not below
    assert triggers(student(scored(50, 50, 50, 50, 49.5))) == [("LOW_AVERAGE_SCORE", 20)]
    # Only the latest five count: an early zero is forgotten, a recent run of low ones is not.
    assert triggers(student(scored(0, 60, 60, 50, 40, 50))) == []
    assert triggers(student(scored(100, 100, 40, 40, 45, 40, 40))) == [("LOW_AVERAGE_SCORE", 20)]
    # Three scores are enough to see a pattern; two are not.
    assert triggers(student(scored(30, 30))) == []
    assert triggers(student(scored(40, 30, 45))) == [("LOW_AVERAGE_SCORE", 20)]
    # Work not scored yet (handed in, waiting for the tutor) does not count.
    assert triggers(student(scored(10, 10, 10, status="SUBMITTED"))) == []


def test_three_drops_in_a_row_add_fifteen_and_two_or_a_level_score_do_not() -> None:
    assert triggers(student(scored(90, 80, 70))) == []  # two drops
    assert triggers(student(scored(90, 80, 70, 60))) == [("FALLING_SCORES", 15)]
    assert triggers(student(scored(50, 90, 80, 70, 60))) == [("FALLING_SCORES", 15)]
    assert triggers(student(scored(90, 80, 80, 70, 60))) == []  # a level score breaks the run
    assert triggers(student(scored(90, 80, 70, 70))) == []  # level is not a drop
    assert triggers(student(scored(90, 80, 70, 60, 65))) == []  # the latest went up


def test_seven_days_without_attendance_add_twenty_five() -> None:
    six = {s.session_id: s for s in [session(1, "PRESENT", days_ago=6.99)]}
    seven = {s.session_id: s for s in [session(1, "PRESENT", days_ago=7.0)]}
    assert triggers(student(six)) == []
    assert triggers(student(seven), NOW + timedelta(minutes=1)) == [("NO_RECENT_ATTENDANCE", 25)]
    # Absent or excused since then does not reset the clock; attending does.
    since = {
        s.session_id: s
        for s in [
            session(1, "LATE", days_ago=10),
            session(2, "ABSENT", days_ago=5),
            session(3, "EXCUSED", days_ago=1),
        ]
    }
    assert triggers(student(since)) == [("NO_RECENT_ATTENDANCE", 25)]
    assert risk_of(student(since), NOW).reasons[0].message.startswith("no attendance for 9 days")
    # Never attended: counted from the first session marked; nothing marked: no trigger.
    never = {s.session_id: s for s in [session(1, "ABSENT", days_ago=8)]}
    assert triggers(student(never)) == [("NO_RECENT_ATTENDANCE", 25)]
    assert triggers(student({})) == []
    assert triggers(student({"x": session(9, None, days_ago=30)})) == []


def test_levels_are_medium_from_twenty_and_high_from_forty() -> None:
    assert [level_of(n) for n in (0, 19, 20, 39, 40, 100)] == [
        RiskLevel.LOW,
        RiskLevel.LOW,
        RiskLevel.MEDIUM,
        RiskLevel.MEDIUM,
        RiskLevel.HIGH,
        RiskLevel.HIGH,
    ]
    # Four overdue homework (20) is MEDIUM; with three absences in a row (and so no
    # attendance for a while) it is HIGH, and every reason is listed.
    overdue = [homework(n, -DAY) for n in range(4)]
    medium = risk_of(student(homework=overdue), NOW)
    assert (medium.score, medium.level) == (20, RiskLevel.MEDIUM)
    sessions = {
        s.session_id: s
        for s in [
            session(1, "PRESENT", days_ago=9),
            session(2, "ABSENT", days_ago=5),
            session(3, "ABSENT", days_ago=3),
            session(4, "ABSENT", days_ago=1),
        ]
    }
    high = risk_of(student(sessions, overdue), NOW)
    assert (high.score, high.level) == (30 + 20 + 25, RiskLevel.HIGH)
    assert [r.trigger.value for r in high.reasons] == [
        "CONSECUTIVE_ABSENCES",
        *["OVERDUE_HOMEWORK"] * 4,
        "NO_RECENT_ATTENDANCE",
    ]
