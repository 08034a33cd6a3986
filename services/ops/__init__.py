"""``python -m services.ops``: the operator's steps of docs/operations.md that have no other
command: an online backup of a SQLite event store, and the step after restoring an event store
(SQLite or PostgreSQL) to an earlier point (see :mod:`services.ops.restore`)."""
