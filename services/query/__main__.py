"""``python -m services.query``: serve the query API with uvicorn."""

from __future__ import annotations

import uvicorn

from services.query.settings import QuerySettings
from services.settings import load_or_exit


def main() -> None:
    settings = load_or_exit(QuerySettings, "query")
    uvicorn.run(
        "services.query.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
