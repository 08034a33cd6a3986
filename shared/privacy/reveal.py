"""Opening sealed texts where they leave tutorpulse: API answers, websocket frames, exports,
notifications.

Personal texts stay sealed in every copy tutorpulse keeps (events, streams, read models,
rendered notifications: see docs/privacy.md); a reader opens them at the last step, in the
centre it reads for. A sealed text names its person and key (:mod:`.cipher`), so any text or
JSON can be opened without knowing where each text came from. A person's text reads
:data:`ERASED` once their key is destroyed, so every answer shows the erasure at once (within
the key cache's seconds in other processes); a text that is not this centre's, or was changed,
reads :data:`UNREADABLE`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from uuid import UUID

import msgspec
import structlog

from shared.privacy.cipher import TOKEN, CiphertextError, parse, unseal
from shared.privacy.keys import Erased, KeyStore

log = structlog.get_logger(__name__)

ERASED = "[erased]"
"""What a text of an erased person reads as."""

UNREADABLE = "[unreadable]"
"""What a sealed text reads as where it cannot be opened (another centre's, or changed)."""

MARK = b"pd1."
_TOKEN_BYTES = re.compile(TOKEN.pattern.encode("ascii"))
_json_string = msgspec.json.Encoder()


class Revealer:
    """Opens the sealed texts in a text or in encoded JSON, for one centre at a time."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def open(self, token: str, centre_id: str) -> str:
        """One sealed text's plain text, :data:`ERASED` or :data:`UNREADABLE`."""
        try:
            sealed = parse(token)
            key = self.keys.fetch(centre_id, sealed.person_id)
            if isinstance(key, Erased):
                return ERASED
            if key is None:
                return UNREADABLE
            return unseal(key, sealed, centre_id=centre_id)
        except CiphertextError as error:
            log.warning("privacy.unreadable", centre=centre_id, error=type(error).__name__)
            return UNREADABLE

    def text(self, value: str, centre_id: str) -> str:
        """``value`` with every sealed text in it opened."""
        if "pd1." not in value:
            return value
        return TOKEN.sub(lambda found: self.open(found.group(0), centre_id), value)

    def json(self, data: bytes, centre_id: str) -> bytes:
        """Encoded JSON with every sealed text in its strings opened (and escaped as JSON)."""
        if MARK not in data:
            return data
        return _TOKEN_BYTES.sub(_json_opener(self, centre_id), data)

    def erased(self, centre_id: str, person_id: UUID) -> bool:
        """Whether the person was erased (their key destroyed)."""
        return isinstance(self.keys.fetch(centre_id, person_id), Erased)


def _json_opener(revealer: Revealer, centre_id: str) -> Callable[[re.Match[bytes]], bytes]:
    def opened(found: re.Match[bytes]) -> bytes:
        text = revealer.open(found.group(0).decode("ascii"), centre_id)
        return _json_string.encode(text)[1:-1]

    return opened
