"""The one place the domain checks the values commands bring: times, text, numbers, sizes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.command.domain import values
from services.command.domain.aggregate import InvalidValue

EAST, WEST = timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 1, 1, 14, tzinfo=EAST),
        datetime(2100, 12, 31, 11, 59, tzinfo=WEST),
    ],
)
def test_times_from_2000_to_2100_in_any_offset_are_taken(moment: datetime) -> None:
    assert values.moment(moment, "startsAt") is moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2101, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1, 13, tzinfo=timezone(timedelta(hours=14))),  # 1999 in UTC
        datetime(202, 12, 2, 11, tzinfo=UTC),
        datetime(9999, 12, 30, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=EAST),
        datetime(9999, 12, 31, 23, tzinfo=WEST),
        datetime(2030, 1, 1),  # no offset
    ],
)
def test_other_times_are_refused_naming_the_field(moment: datetime) -> None:
    with pytest.raises(InvalidValue) as refused:
        values.moment(moment, "dueAt")
    assert refused.value.field == "dueAt"


def test_days_from_2000_to_2100() -> None:
    assert values.day(date(2100, 12, 31), "firstDate") == date(2100, 12, 31)
    for day in (date(1999, 12, 31), date(2101, 1, 1), date(202, 1, 1)):
        with pytest.raises(InvalidValue):
            values.day(day, "firstDate")


@pytest.mark.parametrize("text", ["a\x00b", "a\x1bb", "\x7f", "a\x85b", "a\ud800b", "a\x0bb"])
def test_control_characters_and_lone_surrogates_are_refused_in_any_text(text: str) -> None:
    for lines in (False, True):
        with pytest.raises(InvalidValue) as refused:
            values.text(text, "notes", 100, lines=lines)
        assert refused.value.field == "notes"


def test_line_breaks_and_tabs_only_where_a_text_runs_over_lines() -> None:
    assert values.free_text("one\n\ttwo\r\n", "notes", 100) == "one\n\ttwo\r\n"
    for text in ("one\ntwo", "a\tb", "a\u2028b"):
        with pytest.raises(InvalidValue):
            values.text(text, "title", 100)


def test_any_script_emoji_and_joiners_are_text() -> None:
    for text in ("Zoë", "語文", "👩\u200d🏫", "a\u0301", "\u200f\u05e2\u05d1"):
        assert values.text(text, "title", 100) == text


@given(st.text(max_size=30))
def test_text_is_taken_or_refused_by_the_rules_alone(text: str) -> None:
    try:
        taken = values.text(text, "title", 20)
    except InvalidValue as refused:
        assert refused.field == "title"
        assert (
            len(text) > 20
            or not text.strip()
            or any(ord(c) < 32 or 127 <= ord(c) <= 159 or c in "\u2028\u2029" for c in text)
        )
    else:
        assert taken == text.strip() and taken


def test_blank_and_overlong_text() -> None:
    with pytest.raises(InvalidValue):
        values.text("   ", "title", 10)
    with pytest.raises(InvalidValue):
        values.text("x" * 11, "title", 10)
    assert values.text("x" * 10, "title", 10) == "x" * 10
    assert values.ref(None, "lessonId") is None
    assert values.ref("  l-1 ", "lessonId") == "l-1"


def test_numbers_are_whole_finite_and_in_range() -> None:
    assert values.whole(0, "percent", 0, 99) == 0
    for whole in (True, -1, 100, 2**80):
        with pytest.raises(InvalidValue):
            values.whole(whole, "percent", 0, 99)
    assert values.finite(2.5, "score", 0, 3) == 2.5
    for number in (float("nan"), float("inf"), -0.5, 3.01):
        with pytest.raises(InvalidValue):
            values.finite(number, "score", 0, 3)


def test_sizes() -> None:
    values.at_most([1] * 26, "options", 26)
    with pytest.raises(InvalidValue) as refused:
        values.at_most({str(i): i for i in range(27)}, "options", 26)
    assert refused.value.field == "options"
