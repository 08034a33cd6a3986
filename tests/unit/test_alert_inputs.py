"""What My Day's alerts read of a student is worked out once, by the projection, and only what
depends on the time of reading is left to the read: times as documents write them compare as
text there, exactly as parsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.readmodels.times import iso
from shared.readmodels.views.risk import passed

_instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(_instants, _instants)
def test_a_time_as_documents_write_it_compares_as_text_as_it_does_parsed(
    at: datetime, now: datetime
) -> None:
    assert passed(iso(at), now, iso(now)) is (now > at)


@given(_instants, st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(hours=2)]))
def test_a_time_written_otherwise_is_parsed(at: datetime, later: timedelta) -> None:
    now = at + later
    written = at.isoformat()  # "+00:00", and no fraction when it has no microseconds
    assert passed(written, now, iso(now)) is (now > at)
