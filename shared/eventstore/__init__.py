"""The event store: the eventsourcing library's recorder, configured from the environment.

``TUTORPULSE_STORE``           ``sqlite`` (default) or ``postgres``
``TUTORPULSE_SQLITE_PATH``     SQLite file (default ``var/tutorpulse.sqlite``)
``TUTORPULSE_POSTGRES_HOST``   with ``_PORT`` (5432), ``_DBNAME``, ``_USER``, ``_PASSWORD``,
                               ``_POOL_SIZE`` (5) and ``_LOCK_TIMEOUT`` seconds (5); the
                               timeouts and pool checks are in docs/architecture.md
"""

from shared.eventstore.store import EventMapper, EventStore, StoreHead, store_env

__all__ = ["EventMapper", "EventStore", "StoreHead", "store_env"]
