"""``python -m services.command``: serve the command API with uvicorn."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "services.command.http.app:app_from_environment",
        factory=True,
        host=os.environ.get("TUTORPULSE_COMMAND_HOST", "127.0.0.1"),
        port=int(os.environ.get("TUTORPULSE_COMMAND_PORT", "8010")),
        workers=int(os.environ.get("TUTORPULSE_COMMAND_WORKERS", "1")),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
