"""The read models: how each event changes the documents queries and tutors see.

Every function here is deterministic in the events alone (never the wall clock), so a
rebuild from the event store produces exactly what the live projection produced.
"""
