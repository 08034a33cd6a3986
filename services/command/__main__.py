"""``python -m services.command``: serve the command API with uvicorn."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from services.command.settings import CommandSettings
from services.settings import load_or_exit
from shared.eventstore import EventStore
from shared.observability import configure_logging
from shared.observability.metrics import MULTIPROCESS_VARIABLE, prepare_directory

METRICS_DIR_VARIABLE = "TUTORPULSE_COMMAND_METRICS_DIR"
"""Set for the workers to the directory the start chose (a temporary one when unset)."""


def main() -> None:
    settings = load_or_exit(CommandSettings, "command")
    if not settings.event_store.schema.create_tables:
        # Missing tables stop the start here, once (MissingTables), rather than in every worker
        # (uvicorn's parent then stops too, but with status 0).
        configure_logging("command", settings.logging)
        store = EventStore(settings.event_store)
        try:
            store.snapshot_recorder()
        finally:
            store.close()
    with _metrics_shared_by_workers(settings):
        # Each worker builds the app from the same environment (services.command.http.app).
        uvicorn.run(
            "services.command.http.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
        )


@contextlib.contextmanager
def _metrics_shared_by_workers(settings: CommandSettings) -> Iterator[None]:
    """With several workers, each keeps its metrics in files of one directory, emptied first,
    which ``/metrics`` adds up (``shared.observability.metrics``): named in the workers'
    environment, which they inherit, before prometheus-client is imported in them."""
    if settings.workers < 2:
        yield
        return
    made = settings.metrics_dir is None
    directory = (
        Path(tempfile.mkdtemp(prefix="tutorpulse-command-metrics-"))
        if settings.metrics_dir is None
        else settings.metrics_dir
    )
    prepare_directory(directory)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    os.environ[METRICS_DIR_VARIABLE] = str(directory)
    try:
        yield
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
