"""``python -m services.migrate``: create every table the services use, before they start, as
the database's owner (a deployment's migration Job), so that the services can run as a role that
only reads and writes rows.

    python -m services.migrate            # tables, then grants (TUTORPULSE_MIGRATE_GRANT_TO)
    python -m services.migrate streams    # the JetStream streams, as the relay's NATS user
    python -m services.migrate privacy    # seal the events written before sealing, in place
    python -m services.migrate rewrap     # after a master key rotation: wrap data keys anew

The tables are made by the very code that makes them when a service starts, so there is one
definition of each: the event store's events and snapshots (``shared.eventstore.EventStore``,
``snapshot_recorder``; a command's idempotency receipt is an aggregate in the events table), the
relay's tracking table (``EventStore.tracking``), the people's data keys beside the events
(``shared.privacy.create_key_table``) and the read store's meta table and current generation
(``open_read_store``, ``ReadStore.ensure_ready``). Running it again changes nothing.
It creates them whatever ``TUTORPULSE_CREATE_TABLES`` says: a deployment turns that off for the
services (which then create no table and stop, naming this command, if one is missing).

With ``TUTORPULSE_MIGRATE_GRANT_TO`` (PostgreSQL only), that role is given ``USAGE`` on the
schema, ``SELECT, INSERT, UPDATE, DELETE`` on every table and ``USAGE, SELECT`` on every
sequence, in the event store's and the read store's databases, and the same by default on what
this role creates later (``ALTER DEFAULT PRIVILEGES``: a rebuild's new generation of read-model
tables, run as this role, is readable and writable by the services at once). ``LOCK TABLE … IN
EXCLUSIVE MODE`` (each append) needs ``UPDATE``; advisory locks, ``LISTEN`` and ``NOTIFY`` need
no grant.
"""
