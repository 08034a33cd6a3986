"""A row of a session's log: one event of the session, as it happened."""

from __future__ import annotations

import msgspec

from shared.readmodels.documents.base import Instant, JsonObject


class LogRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a session's log (``rm_log``), in notification order."""

    notification_id: int
    session_id: str
    centre_id: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: Instant
    event_type: str
    actor_id: str
    actor_role: str
    event: JsonObject
    """The event itself, in its contract's JSON (``shared.events``), as the audit trail shows it."""

    def about_student(self) -> str | None:
        """The student the event concerns, if it concerns one."""
        student_id = self.event.get("studentId")
        return student_id if isinstance(student_id, str) else None
