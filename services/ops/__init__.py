"""``python -m services.ops``: the operator's steps of docs/operations.md that have no other
command: an online backup of a SQLite event store, the step after restoring an event store
(SQLite or PostgreSQL) to an earlier point (see :mod:`services.ops.restore`), and a check of
``TP_EVENTS`` against the store (:mod:`services.ops.verify`)."""
