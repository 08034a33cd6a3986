"""The read side: read-model documents, the store that keeps them, the projector that shapes
them from events, and the views and access rules that show them.

A library rather than a service, so the projection service (which writes the read models), the
query API and the live gateway (which read them), the rebuild and the dead-letters CLI all
import it from here, and no service reaches into another.
"""
