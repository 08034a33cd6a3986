"""Whether a service creates the tables it uses at start, and what it says when it may not and
they are missing.

``make run`` and the tests start on an empty database, so by default each store creates its
tables (``CREATE TABLE IF NOT EXISTS``) when it opens. A deployment creates them before the
services start, with ``python -m services.migrate`` as the database's owner, and runs the
services as a role that may read and write rows only: PostgreSQL checks the right to create
before it looks whether the table exists, so such a role must not run those statements at all.
With ``TUTORPULSE_CREATE_TABLES=false`` (``shared.eventstore.settings.SchemaSettings``) a
store creates nothing, checks that its tables are there, and stops the service with
:class:`MissingTables` if one is not.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

MIGRATE_COMMAND = "python -m services.migrate"
log = structlog.get_logger(__name__)


STARTUP_FAILURE = 3
"""The status a program stops with: uvicorn's for a worker that could not start, so that the
command API with several workers stops as a whole instead of starting them again and again."""


class MissingTables(SystemExit):
    """A store may not create its tables (``TUTORPULSE_CREATE_TABLES`` is off) and some are
    missing. Logged as one ``store.tables_missing`` line when raised; a :class:`SystemExit`
    (status :data:`STARTUP_FAILURE`), so the program stops, whatever loop it was in, rather
    than retry (or log a traceback) until someone runs the migration."""

    def __init__(self, store: str, tables: Sequence[str]) -> None:
        self.store = store
        self.tables = tuple(tables)
        noun, verb = ("table", "is") if len(self.tables) == 1 else ("tables", "are")
        self.message = (
            f"the {store}'s {noun} {', '.join(self.tables)} {verb} missing "
            f"(TUTORPULSE_CREATE_TABLES is off): run `{MIGRATE_COMMAND}` as the database's "
            "owner first"
        )
        super().__init__(STARTUP_FAILURE)
        log.error("store.tables_missing", store=store, tables=list(self.tables), error=self.message)

    def __str__(self) -> str:
        return self.message
