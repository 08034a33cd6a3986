"""The event store: the eventsourcing library's recorder, configured by
:class:`EventStoreSettings` (``TUTORPULSE_STORE``, ``TUTORPULSE_SQLITE_PATH``,
``TUTORPULSE_POSTGRES_*``; every variable is in docs/settings.md)."""

from shared.eventstore.settings import EventStoreSettings
from shared.eventstore.store import EventMapper, EventStore, StoredLog, store_env

__all__ = ["EventMapper", "EventStore", "EventStoreSettings", "StoredLog", "store_env"]
