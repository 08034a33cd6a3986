"""Which request ids and traceparents a caller's headers may set, and the metadata a trace
stores with an event."""

from __future__ import annotations

import json

import pytest

from shared.observability import context

VALID_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    ["abc", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "req_1.2:3~4+5/6=7@8", "x" * 128],
)
def test_plain_short_request_ids_are_kept(value: str) -> None:
    assert context.valid_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "x" * 129, "has space", 'a"quote', "back\\slash", "a,b", "new\nline", "é", "<b>"],
)
def test_other_request_ids_are_refused(value: str | None) -> None:
    assert context.valid_request_id(value) is None


def test_a_new_request_id_is_valid_and_unique() -> None:
    made = {context.new_request_id() for _ in range(100)}
    assert len(made) == 100
    assert all(context.valid_request_id(value) == value for value in made)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (VALID_TRACEPARENT, VALID_TRACEPARENT),
        (VALID_TRACEPARENT[:-2] + "00", VALID_TRACEPARENT[:-2] + "00"),
        # a later version: its first four fields are read as version 00's
        ("01" + VALID_TRACEPARENT[2:] + "-more", "01" + VALID_TRACEPARENT[2:]),
    ],
)
def test_valid_traceparents_are_kept(value: str, kept: str) -> None:
    assert context.valid_traceparent(value) == kept


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        VALID_TRACEPARENT + "-extra",  # version 00 is exactly 55 characters
        "01" + VALID_TRACEPARENT[2:] + "x",  # a later version, but no dash after the flags
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  # not hexadecimal
    ],
)
def test_invalid_traceparents_are_ignored(value: str | None) -> None:
    assert context.valid_traceparent(value) is None


def test_a_trace_is_stored_as_an_events_closing_metadata_and_sent_as_headers() -> None:
    stored = context.trace("click-1", "click-1", VALID_TRACEPARENT)
    event = b'{"type":"X","centreId":"alpha"}'
    assert json.loads(event[:-1] + stored.stored) == {
        "type": "X",
        "centreId": "alpha",
        "metadata": {
            "correlationId": "click-1",
            "causationId": "click-1",
            "traceparent": VALID_TRACEPARENT,
        },
    }
    assert stored.headers == {
        "Tp-Correlation-Id": "click-1",
        "Tp-Causation-Id": "click-1",
        "traceparent": VALID_TRACEPARENT,
    }
    assert context.from_headers(stored.headers) == {
        "correlation_id": "click-1",
        "causation_id": "click-1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    untraced = context.trace("a", "b")
    assert json.loads(b"{" + untraced.stored[1:]) == {
        "metadata": {"correlationId": "a", "causationId": "b"}
    }
    assert "traceparent" not in untraced.headers
