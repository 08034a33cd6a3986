"""What the projection service passes on of a message's correlation: on the change notices
and the batch's line, on a failing message's lines, and on its dead letter."""

from __future__ import annotations

import pytest
import structlog
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from services.projections.service import Settings
from shared.readmodels.store import ReadStore
from tests.support.projection_replica import (
    Item,
    Recorder,
    delivered,
    fail_enrolments,
    projection_service,
)


def traced(message: Msg, correlation: str, causation: str) -> Msg:
    assert message.headers is not None
    message.headers |= {"Tp-Correlation-Id": correlation, "Tp-Causation-Id": causation}
    return message


async def test_a_batchs_notices_and_line_name_the_correlation_ids_of_its_events(
    store_before_enrolment: ReadStore, session_events: list[Item]
) -> None:
    client = Recorder()
    service = projection_service(store_before_enrolment, client)
    batch = [
        traced(
            delivered(client, session_events[1], deliveries=1, sequence=7), "click-a", "click-a"
        ),
        traced(
            delivered(client, session_events[2], deliveries=1, sequence=8), "click-b", "click-b"
        ),
        traced(
            delivered(client, session_events[3], deliveries=1, sequence=9), "click-a", "click-a"
        ),
    ]
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await service.handle(batch)
    assert client.notices
    assert {headers["Tp-Correlation-Id"] for _, headers in client.notices} == {"click-a,click-b"}
    [line] = [line for line in logs if line["event"] == "projections.applied"]
    assert line["correlation_ids"] == ["click-a", "click-b"]
    assert line["events"] == 3 and line["notices"] == len(client.notices)


async def test_a_failing_messages_lines_and_dead_letter_keep_its_correlation(
    store_before_enrolment: ReadStore, session_events: list[Item], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_enrolments(monkeypatch)
    client = Recorder()
    service = projection_service(store_before_enrolment, client)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        for deliveries in range(1, Settings().poison_after + 1):
            message = delivered(client, session_events[1], deliveries=deliveries)
            await service.handle([traced(message, "click-c", "click-c")])
    failed = [line for line in logs if line["event"] == "projections.event_failed"]
    assert failed and all(line["correlation_id"] == "click-c" for line in failed)
    assert all(line["causation_id"] == "click-c" for line in failed)
    [(_, _, headers)] = client.dead
    assert headers["Tp-Correlation-Id"] == "click-c"
    assert headers["Tp-Causation-Id"] == "click-c"
    # The next message's lines are not bound to it.
    assert structlog.contextvars.get_contextvars().get("correlation_id") is None
