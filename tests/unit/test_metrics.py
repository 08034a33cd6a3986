"""The values the per-centre and backlog metrics show: bounded centre labels, a backlog's age,
websocket connections by centre, a consumer's pending messages and a stream's fullness."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from services.consumer_pending import record_consumer
from services.live_gateway.hub import Hub
from services.live_gateway.settings import HubSettings
from services.projections.metrics import record_streams
from shared.observability.metrics import OTHER, Backlog, CentreLabels
from shared.observability.settings import MetricsSettings
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor, Role


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_named_centres_have_their_own_label_and_every_other_is_other() -> None:
    label = CentreLabels(MetricsSettings(centres=("alpha", "beta"), centre_limit=1))
    assert [label(c) for c in ("alpha", "beta", "gamma", "delta")] == [
        "alpha",
        "beta",
        OTHER,
        OTHER,
    ]


def test_without_names_the_first_centres_seen_are_labelled_up_to_the_limit() -> None:
    label = CentreLabels(MetricsSettings(centre_limit=2))
    seen = [label(c) for c in ("alpha", "beta", "gamma", "alpha", "beta", "delta")]
    assert seen == ["alpha", "beta", OTHER, "alpha", "beta", OTHER]
    assert len(set(seen)) == 3  # the bound: limit + "other"


def test_a_backlog_counts_seconds_since_it_was_last_empty() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    size = Gauge("backlog_size", "size", registry=registry)
    seconds = Gauge("backlog_seconds", "seconds", registry=registry)
    backlog = Backlog(size, seconds, clock=lambda: now[0])

    def read() -> tuple[float | None, float | None]:
        return registry.get_sample_value("backlog_size"), registry.get_sample_value(
            "backlog_seconds"
        )

    assert read() == (0.0, 0.0)
    backlog.set(5)
    now[0] = 130.0
    backlog.set(3)  # still waiting: the age goes on from the first moment
    assert read() == (3.0, 30.0)
    backlog.set(0)
    assert read() == (0.0, 0.0)
    backlog.set(1)
    now[0] = 131.5
    assert read() == (1.0, 1.5)


def actor(centre: str) -> Actor:
    return Actor(user_id=uuid4(), role=Role.TEACHER, centre_id=centre)


async def test_websocket_connections_are_counted_by_centre_with_the_rest_as_other() -> None:
    settings = HubSettings(metrics=MetricsSettings(centres=("north-campus",)))
    hub = Hub(cast(ReadStore, None), settings)
    name = "tutorpulse_gateway_centre_connections"
    before = value(name, centre="north-campus"), value(name, centre=OTHER)
    first = hub.open(actor("north-campus"))
    hub.open(actor("north-campus"))
    hub.open(actor("south-campus"))
    assert value(name, centre="north-campus") == before[0] + 2
    assert value(name, centre=OTHER) == before[1] + 1
    await hub.close(first)
    await hub.close(first)  # closing twice counts once
    assert value(name, centre="north-campus") == before[0] + 1


def test_a_consumers_pending_messages_are_shown_by_durable() -> None:
    record_consumer("projections", cast(Any, SimpleNamespace(num_pending=1200, num_ack_pending=7)))
    assert value("tutorpulse_consumer_pending", durable="projections") == 1200
    assert value("tutorpulse_consumer_ack_pending", durable="projections") == 7


class Streams:
    """JetStream's answers to stream info: TP_EVENTS limited, TP_DLQ not, one not answering."""

    async def stream_info(self, stream: str) -> Any:
        if stream == "GONE":
            raise TimeoutError("no answer")
        limit = 1000 if stream == "TP_EVENTS" else None
        return SimpleNamespace(
            state=SimpleNamespace(bytes=850 if limit else 10),
            config=SimpleNamespace(max_bytes=limit),
        )


async def test_streams_bytes_and_limits_are_shown_and_a_silent_stream_is_skipped() -> None:
    await record_streams(cast(Any, Streams()), ("TP_EVENTS", "TP_DLQ", "GONE"))
    assert value("tutorpulse_jetstream_stream_bytes", stream="TP_EVENTS") == 850
    assert value("tutorpulse_jetstream_stream_max_bytes", stream="TP_EVENTS") == 1000
    assert value("tutorpulse_jetstream_stream_max_bytes", stream="TP_DLQ") == -1
    assert (
        REGISTRY.get_sample_value("tutorpulse_jetstream_stream_bytes", {"stream": "GONE"}) is None
    )
