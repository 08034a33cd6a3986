"""``python -m services.query``: serve the query API with uvicorn."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "services.query.app:app_from_environment",
        factory=True,
        host=os.environ.get("TUTORPULSE_QUERY_HOST", "127.0.0.1"),
        port=int(os.environ.get("TUTORPULSE_QUERY_PORT", "8014")),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
