"""``python -m services.command``: serve the command API with uvicorn."""

from __future__ import annotations

import uvicorn

from services.command.settings import CommandSettings
from services.settings import load_or_exit


def main() -> None:
    settings = load_or_exit(CommandSettings, "command")
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
