from __future__ import annotations

import logging
import sys

import structlog

from shared.observability.settings import LogSettings


def configure_logging(service: str, settings: LogSettings) -> None:
    """JSON lines on stdout by default; ``TUTORPULSE_LOG_FORMAT=console`` for people.

    ``TUTORPULSE_LOG_LEVEL`` (default INFO) sets the threshold. With
    ``TUTORPULSE_OTEL_ENDPOINT``, traces are sent there too (:mod:`.tracing`).
    """
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    console = settings.format == "console"
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer = (
        structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())  # none in a file or a pipe
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (uvicorn, nats, eventsourcing) log through the standard library: same format.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared[:-1],
                structlog.stdlib.add_logger_name,
                lambda _, __, event: {**event, "service": service},
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.otel_endpoint:
        from shared.observability import tracing

        tracing.configure(service, endpoint=settings.otel_endpoint)
