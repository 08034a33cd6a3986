"""OpenTelemetry traces of one click: the HTTP command, the relay's publish, the projection's
apply and the gateway's send, one trace linked through the ``traceparent`` that the event's
metadata, the JetStream message and the change notice carry.

Off unless ``TUTORPULSE_OTEL_ENDPOINT`` names an OTLP/HTTP collector
(:class:`~shared.observability.settings.LogSettings`): then :func:`configure` (called by
``configure_logging``) installs a tracer for the process's service, exporting in the
background (a batch span processor), with ``service.name`` ``tutorpulse-<service>``. Off, no
OpenTelemetry module is imported and each step costs one test of an empty dict
(:func:`tracer`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

_TRACERS: dict[str, Tracer] = {}
_PROVIDERS: list[TracerProvider] = []
MAX_LINKS = 16
"""The most other traces a batch's span links to (a busy moment's batch holds many clicks)."""

Kind = Literal["server", "producer", "consumer", "internal"]


def configure(
    service: str, endpoint: str | None = None, exporter: SpanExporter | None = None
) -> None:
    """Trace ``service``'s steps from now on, exported to the OTLP/HTTP ``endpoint`` (e.g.
    ``http://otel-collector:4318/v1/traces``) in batches, or to ``exporter`` as each span
    ends (tests: the SDK's in-memory exporter)."""
    if service in _TRACERS:  # configured already (logging configured twice in one process)
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"tutorpulse-{service}"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        raise ValueError("name an endpoint or an exporter")
    _PROVIDERS.append(provider)
    _TRACERS[service] = provider.get_tracer("tutorpulse")


def shutdown() -> None:
    """Export what is left and stop tracing (at exit; between tests)."""
    for provider in _PROVIDERS:
        provider.shutdown()
    _PROVIDERS.clear()
    _TRACERS.clear()


def tracer(service: str) -> Tracer | None:
    """``service``'s tracer, or ``None`` when tracing is off."""
    return _TRACERS.get(service) if _TRACERS else None


def start_span(
    tracer: Tracer,
    name: str,
    parent: str | None,
    kind: Kind,
    *,
    links: Iterable[str] = (),
    attributes: Mapping[str, str | int] | None = None,
    started_ns: int | None = None,
) -> Span:
    """A span named ``name``, child of the span a ``traceparent`` names (``parent``; a new
    trace without), linked to the spans of ``links`` (more traceparents)."""
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    context = propagator.extract({"traceparent": parent}) if parent else None
    linked = [
        Link(trace.get_current_span(propagator.extract({"traceparent": other})).get_span_context())
        for other in list(dict.fromkeys(links))[:MAX_LINKS]
        if other != parent
    ]
    return tracer.start_span(
        name,
        context=context,
        kind=getattr(SpanKind, kind.upper()),
        links=[link for link in linked if link.context.is_valid],
        attributes=dict(attributes or {}),
        start_time=started_ns,
    )


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` naming ``span``, for the next step to continue its trace."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def wall_ns_since(perf_counter_started: float) -> int:
    """The wall-clock time (ns) of a ``time.perf_counter()`` reading: a span's start."""
    return time.time_ns() - int((time.perf_counter() - perf_counter_started) * 1e9)


def end(
    span: Span, *, failed: bool = False, attributes: Mapping[str, str | int] | None = None
) -> None:
    """End ``span``, with ``attributes`` learnt meanwhile; ``failed``: its status is ERROR."""
    from opentelemetry.trace import Status, StatusCode

    if attributes:
        span.set_attributes(attributes)
    if failed:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
