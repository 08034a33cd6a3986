"""Change notices: after a projection commits, it announces each changed document on NATS.

``tp.delta.<centreId>.<kind>.<key>``, payload ``{"kind", "key", "centreId", "version",
"patch"}`` where ``patch`` is the RFC 7386 merge patch from the previous to the new document.
The live gateway treats a notice as a doorbell: it reads the document from the read store and
sends each subscriber their own view, so a lost notice delays a change (until the gateway's
periodic check) but never loses it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.projections.projector import Change
from services.projections.views import merge_patch

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
    patch: dict[str, Any] | None = None


def notice_for(change: Change) -> tuple[str, bytes]:
    notice = DeltaNotice(kind=change.kind, key=change.key, centre_id=change.centre_id,
                         version=change.version, patch=merge_patch(change.before or {}, change.after))
    return delta_subject(change.centre_id, change.kind, change.key), msgspec.json.encode(notice)


decode_notice = msgspec.json.Decoder(DeltaNotice).decode
