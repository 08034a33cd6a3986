"""``python -m services.command``: serve the command API with uvicorn."""

from __future__ import annotations

import uvicorn

from services.command.settings import CommandSettings
from services.settings import load_or_exit
from shared.eventstore import EventStore
from shared.observability import configure_logging


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


if __name__ == "__main__":
    main()
