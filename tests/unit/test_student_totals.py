"""The student projection's shortcuts give what counting everything again gives: a month's
totals changed by the one session that changed equal the month's totals counted from its
sessions, and ``student_risk`` (worked out from what is kept of each session entry between
refreshes) equals the copy worked out from the window alone. Times are drawn from a few values,
so that sessions share the latest or earliest of something."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import events as ev
from shared.readmodels.documents import SessionTotals, Student, StudentSession, Work, encode
from shared.readmodels.projector.student import (
    RISK_MARKS,
    RISK_SCORED,
    _month_after,
    _share_of,
    _sums_after,
    _totals,
    month_totals,
    risk_inputs,
)

_TIMES = [f"2026-03-0{day}T1{hour}:00:00Z" for day in range(1, 4) for hour in range(3)]
_times = st.sampled_from(_TIMES)


@st.composite
def works(draw: st.DrawFn, session_id: str) -> dict[str, Work]:
    found: dict[str, Work] = {}
    for n in range(draw(st.integers(0, 3))):
        status = draw(st.sampled_from(list(ev.WorkStatus)))
        work_id = f"{session_id}-w{n}"
        found[work_id] = Work(
            work_id=work_id,
            exercise_id="e",
            title="Fractions",
            exercise_type=ev.ExerciseType.NUMERICAL,
            difficulty=ev.Difficulty.EASY,
            max_score=draw(st.sampled_from([0, 10])),
            auto_gradable=True,
            status=status,
            assigned_at=draw(_times),
            assigned_by="tutor",
            submitted_at=draw(st.none() | _times),
            graded_at=draw(st.none() | _times),
            score=draw(st.none() | st.sampled_from([0.0, 4.0, 10.0])),
            xp_awarded=draw(st.integers(0, 3)),
        )
    return found


@st.composite
def sessions(draw: st.DrawFn, session_id: str) -> StudentSession:
    return StudentSession(
        session_id=session_id,
        title="Algebra",
        status=draw(st.sampled_from(list(ev.SessionStatus))),
        starts_at=draw(_times),
        ends_at="2026-03-09T00:00:00Z",
        enrolled=True,
        attendance=draw(st.none() | st.sampled_from(list(ev.AttendanceStatus))),
        work=draw(works(session_id)),
    )


@st.composite
def months(draw: st.DrawFn) -> tuple[list[StudentSession], int, StudentSession]:
    """A month's sessions, which one changes (its index; past the end: a new session), and
    what it becomes."""
    count = draw(st.integers(1, 8))
    month = [draw(sessions(f"s{n}")) for n in range(count)]
    changed = draw(st.integers(0, count))
    return month, changed, draw(sessions(f"s{changed}"))


@settings(max_examples=400, deadline=None)
@given(months())
def test_a_month_changed_by_one_session_is_the_month_counted_again(
    drawn: tuple[list[StudentSession], int, StudentSession],
) -> None:
    month, changed, now = drawn
    was = month[changed] if changed < len(month) else None
    after = [*month[:changed], now, *month[changed + 1 :]]
    shortcut = _month_after(
        month_totals(month), _share_of(was) if was is not None else None, _share_of(now)
    )
    if shortcut is not None:  # None: only the month's sessions can tell
        assert encode(shortcut) == encode(month_totals(after))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_sums_changed_by_one_month_are_the_months_summed_again(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 6))
    months = [
        month_totals(data.draw(st.lists(sessions(f"m{n}"), min_size=1, max_size=3)))
        for n in range(count)
    ]
    changed = data.draw(st.integers(0, count))
    now = month_totals(data.draw(st.lists(sessions("new"), min_size=1, max_size=3)))
    was = months[changed] if changed < count else None
    after = [*months[:changed], now, *months[changed + 1 :]]
    shortcut = _sums_after(_totals(months), was, now)
    if shortcut is not None:  # None: only the other months can tell
        assert encode(shortcut) == encode(_totals(after))


def _percent(work: Work) -> float | None:
    if work.status not in RISK_SCORED or work.score is None or work.max_score <= 0:
        return None
    return 100.0 * work.score / work.max_score


def _risk_from_window(student: Student) -> Student:
    """``student_risk`` worked out from the window alone, every session looked at afresh."""
    marked = sorted(
        (s for s in student.sessions.values() if s.attendance),
        key=lambda s: (s.starts_at, s.session_id),
        reverse=True,
    )
    keep = {s.session_id for s in marked[:RISK_MARKS]}
    attended = [s for s in marked if s.attendance in {"PRESENT", "LATE"}]
    keep |= {s.session_id for s in attended[:1] + marked[-1:]}
    scored = sorted(
        (w.graded_at or w.submitted_at or w.assigned_at, w.work_id, s.session_id)
        for s in student.sessions.values()
        for w in s.work.values()
        if _percent(w) is not None
    )[-RISK_MARKS:]
    works: dict[str, set[str]] = {}
    for _, work_id, session_id in scored:
        works.setdefault(session_id, set()).add(work_id)
    return Student(
        student_id=student.student_id,
        centre_id=student.centre_id,
        sessions={
            key: msgspec.structs.replace(
                s,
                catch_ups={},
                help_requests={},
                work={w: s.work[w] for w in sorted(works.get(key, ()))},
            )
            for key, s in student.sessions.items()
            if key in keep or key in works
        },
        totals=student.totals,
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(*(sessions(f"s{i}") for i in range(n)))))
def test_the_risk_copy_is_that_of_the_window_looked_at_afresh(
    window: tuple[StudentSession, ...],
) -> None:
    student = Student(
        student_id="st",
        centre_id="c",
        sessions={s.session_id: s for s in window},
        totals=SessionTotals(count=len(window)),
    )
    expected = encode(_risk_from_window(student))
    assert encode(risk_inputs(student)) == expected
    assert encode(risk_inputs(student)) == expected  # again, from what was kept of each entry
