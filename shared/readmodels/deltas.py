"""Change notices: after a projection commits, it announces each changed document on NATS.

``tp.delta.<centreId>.<kind>.<key>``, payload ``{"kind", "key", "centreId", "version"}``.
The live gateway treats a notice as a doorbell: it reads the document from the read store and
sends each subscriber their own view, so a lost notice delays a change (until the gateway's
periodic check) but never loses it. Every new version is announced, even one whose content
did not change, so clients learn the version they hold.
"""

from __future__ import annotations

import msgspec

from shared.readmodels.projector import Change

DELTA_PREFIX = "tp.delta"


def delta_subject(centre_id: str, kind: str, key: str) -> str:
    return f"{DELTA_PREFIX}.{centre_id}.{kind}.{key}"


def centre_deltas(centre_id: str) -> str:
    return f"{DELTA_PREFIX}.{centre_id}.>"


class DeltaNotice(msgspec.Struct, frozen=True, rename="camel"):
    kind: str
    key: str
    centre_id: str
    version: int


def notice_for(change: Change) -> tuple[str, bytes]:
    notice = DeltaNotice(
        kind=change.kind, key=change.key, centre_id=change.centre_id, version=change.version
    )
    return delta_subject(change.centre_id, change.kind, change.key), msgspec.json.encode(notice)


decode_notice = msgspec.json.Decoder(DeltaNotice).decode
