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
from typing import NamedTuple
from uuid import UUID

import msgspec
import structlog

from shared.privacy.cipher import TOKEN, CiphertextError, parse, unseal
from shared.privacy.keys import DataKey, Erased, KeyStore

log = structlog.get_logger(__name__)

ERASED = "[erased]"
"""What a text of an erased person reads as."""

UNREADABLE = "[unreadable]"
"""What a sealed text reads as where it cannot be opened (another centre's, or changed)."""

MARK = b"pd1."
_TOKEN_BYTES = re.compile(TOKEN.pattern.encode("ascii"))
_json_string = msgspec.json.Encoder()

OPENED_KEPT = 50_000
"""Opened texts a process keeps (then forgets them all and starts again): a sealed text is
opened once, not at every answer that shows it."""


def _as_json(text: str) -> bytes:
    return _json_string.encode(text)[1:-1]


class _Opened(NamedTuple):
    person_id: UUID
    key_id: str
    text: str
    json: bytes


_NOT_OPENED = {ERASED: _as_json(ERASED), UNREADABLE: _as_json(UNREADABLE)}


class Revealer:
    """Opens the sealed texts in a text or in encoded JSON, for one centre at a time.

    What a sealed text opens to is kept (per centre, up to :data:`OPENED_KEPT`), but a kept
    text is shown only while the key store still gives its person's key: an erasure shows as
    soon as the key store knows it, as without the memory."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._opened: dict[tuple[str, str], _Opened] = {}

    def open(self, token: str, centre_id: str) -> str:
        """One sealed text's plain text, :data:`ERASED` or :data:`UNREADABLE`."""
        return self._open(token, centre_id)[0]

    def _open(self, token: str, centre_id: str) -> tuple[str, bytes]:
        kept = self._opened.get((centre_id, token))
        if kept is not None:
            key = self.keys.fetch(centre_id, kept.person_id)
            if isinstance(key, DataKey) and key.key_id == kept.key_id:
                return kept.text, kept.json
        try:
            sealed = parse(token)
            key = self.keys.fetch(centre_id, sealed.person_id)
            if isinstance(key, Erased):
                return ERASED, _NOT_OPENED[ERASED]
            if key is None:
                return UNREADABLE, _NOT_OPENED[UNREADABLE]
            text = unseal(key, sealed, centre_id=centre_id)
        except CiphertextError as error:
            log.warning("privacy.unreadable", centre=centre_id, error=type(error).__name__)
            return UNREADABLE, _NOT_OPENED[UNREADABLE]
        if len(self._opened) >= OPENED_KEPT:
            self._opened.clear()
        opened = _Opened(sealed.person_id, key.key_id, text, _as_json(text))
        self._opened[(centre_id, token)] = opened
        return opened.text, opened.json

    def text(self, value: str, centre_id: str) -> str:
        """``value`` with every sealed text in it opened."""
        if "pd1." not in value:
            return value
        return TOKEN.sub(lambda found: self._open(found.group(0), centre_id)[0], value)

    def json(self, data: bytes, centre_id: str) -> bytes:
        """Encoded JSON with every sealed text in its strings opened (and escaped as JSON)."""
        if MARK not in data:
            return data
        return _TOKEN_BYTES.sub(
            lambda found: self._open(found.group(0).decode("ascii"), centre_id)[1], data
        )

    def name_order(self, centre_id: str) -> Callable[[str | None], str]:
        """The sort key of names as this centre's readers see them: opened and casefolded
        (none: first), for views that order people by name (stored sealed, their order would
        be the ciphertexts')."""

        def key(name: str | None) -> str:
            return self.text(name, centre_id).casefold() if name else ""

        return key

    def erased(self, centre_id: str, person_id: UUID) -> bool:
        """Whether the person was erased (their key destroyed)."""
        return isinstance(self.keys.fetch(centre_id, person_id), Erased)
