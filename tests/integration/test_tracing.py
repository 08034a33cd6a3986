"""OpenTelemetry: one command is one trace across the HTTP command, the relay's publish, the
projection's apply and the gateway's send (in one process, PostgreSQL and nats-server, with
the SDK's in-memory exporter); with tracing off nothing of OpenTelemetry is even imported."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.observability import tracing
from tests.integration.test_following_one_request import TRACEPARENT
from tests.support.live_demo import live_demo, mark_michael_absent, watching
from tests.support.servers import NatsServer, PostgresServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALLER_TRACE = int(TRACEPARENT[3:35], 16)
CALLER_SPAN = int(TRACEPARENT[36:52], 16)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    for service in ("command", "relay", "projections", "live_gateway"):
        tracing.configure(service, exporter=exporter)
    yield exporter
    tracing.shutdown()


def _of(spans: tuple[ReadableSpan, ...], service: str) -> list[ReadableSpan]:
    return [s for s in spans if s.resource.attributes["service.name"] == f"tutorpulse-{service}"]


async def test_one_command_is_one_trace_from_http_to_the_websocket(
    pg: PostgresServer, nats_server: NatsServer, spans: InMemorySpanExporter
) -> None:
    async with live_demo(pg, nats_server) as demo:
        session = demo.session
        async with watching(demo) as (socket, _):
            spans.clear()
            response = await mark_michael_absent(demo, {"traceparent": TRACEPARENT})
            assert response.status_code == 200, response.text
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "delta"
            while not any(
                s.name == f"send session:{session}"
                for s in _of(spans.get_finished_spans(), "live_gateway")
            ):
                await asyncio.sleep(0.01)

    finished = [s for s in spans.get_finished_spans() if s.context.trace_id == CALLER_TRACE]
    [command] = [s for s in _of(tuple(finished), "command") if s.kind is SpanKind.SERVER]
    assert command.name == "POST /api/academic/attendance/bulk"
    assert command.parent is not None and command.parent.span_id == CALLER_SPAN
    assert command.attributes is not None
    assert command.attributes["http.response.status_code"] == 200

    publishes = _of(tuple(finished), "relay")
    assert publishes, "no publish span in the caller's trace"
    assert all(
        s.parent is not None and s.parent.span_id == command.context.span_id for s in publishes
    )
    assert {s.kind for s in publishes} == {SpanKind.PRODUCER}

    applies = _of(tuple(finished), "projections")
    assert applies, "no apply span in the caller's trace"
    published = {s.context.span_id for s in publishes}
    assert all(s.parent is not None and s.parent.span_id in published for s in applies)

    sends = [s for s in _of(tuple(finished), "live_gateway") if s.name == f"send session:{session}"]
    assert sends, "no send span in the caller's trace"
    applied = {s.context.span_id for s in applies}
    assert all(s.parent is not None and s.parent.span_id in applied for s in sends)


def test_with_tracing_off_no_opentelemetry_module_is_imported_and_the_setting_turns_it_on() -> None:
    """Every service's modules imported and logging configured: no OpenTelemetry module (the
    setting is off by default); with ``TUTORPULSE_OTEL_ENDPOINT`` the service has a tracer.
    In a process of its own: configuring logging is for the whole process."""
    script = (
        "import sys\n"
        "import services.command.http.app, services.query.app, services.live_gateway.app\n"
        "import services.relay.relay, services.projections.service\n"
        "from shared.observability import configure_logging, tracing\n"
        "from shared.observability.settings import LogSettings\n"
        "from shared.settings import load\n"
        "configure_logging('command', load(LogSettings, {}))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
        "assert tracing.tracer('command') is None\n"
        "endpoint = {'TUTORPULSE_OTEL_ENDPOINT': 'http://127.0.0.1:9/v1/traces'}\n"
        "configure_logging('query', load(LogSettings, endpoint))\n"
        "assert tracing.tracer('query') is not None and tracing.tracer('relay') is None\n"
        "tracing.shutdown()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
