"""Change notices: after a projection commits, it announces each changed document on NATS.

``tp.delta.<centreId>.<kind>.<key>``, payload ``{"kind", "key", "centreId", "version"}``.
The live gateway treats a notice as a doorbell: it reads the document from the read store and
sends each subscriber their own view, so a lost notice delays a change (until the gateway's
periodic check) but never loses it. Every new version of a kind the gateway shows
(:data:`ANNOUNCED_KINDS`) is announced, even one whose content did not change, so clients
learn the version they hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from shared.readmodels.documents import CATCH_UP, CLASS, INBOX, SESSION, STUDENT, TUTOR
from shared.readmodels.projector import Change

DELTA_PREFIX = "tp.delta"

ANNOUNCED_KINDS: Final = frozenset(
    kind.name for kind in (SESSION, STUDENT, CLASS, TUTOR, CATCH_UP, INBOX)
)
"""The kinds whose changes are announced: those a live gateway's topic follows (a session, a
student's overview, a class, a tutor's My Day, the catch-ups, an inbox). The other kinds are
parts of these kept apart (a student's months and alerts, the indexes) or read by queries
alone, and no socket follows them: a projection batch changes two or three of them per event.
"""


def delta_subject(centre_id: str, kind: str, key: str) -> str:
    return f"{DELTA_PREFIX}.{centre_id}.{kind}.{key}"


def centre_deltas(centre_id: str) -> str:
    return f"{DELTA_PREFIX}.{centre_id}.>"


class DeltaNotice(msgspec.Struct, frozen=True, rename="camel"):
    kind: str
    key: str
    centre_id: str
    version: int


def announced(changes: Iterable[Change]) -> list[Change]:
    """The changes a live gateway may follow, to be announced."""
    return [change for change in changes if change.kind in ANNOUNCED_KINDS]


def notice_for(change: Change) -> tuple[str, bytes]:
    notice = DeltaNotice(
        kind=change.kind, key=change.key, centre_id=change.centre_id, version=change.version
    )
    return delta_subject(change.centre_id, change.kind, change.key), msgspec.json.encode(notice)


decode_notice = msgspec.json.Decoder(DeltaNotice).decode
