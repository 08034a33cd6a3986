"""Whether a person was erased, asked on every request: the bearer token of an erased person
stops working (``shared.http.auth``), in the HTTP APIs and the live gateway alike.

:class:`ErasureCheck` answers from a small in-process cache so that a request costs no database
read in steady state. The key store keeps the keys it unwrapped, but not the people who never
had a key (most staff: nothing is sealed with their key); this cache keeps both answers:

- "not erased" for ``seconds`` (``TUTORPULSE_PRIVACY_KEY_CACHE_SECONDS``): another process's
  erasure is seen at the latest that long after it, as with the keys themselves;
- "erased" for ever: an erasure is never undone.

At most ``size`` people are kept (the least recently asked go first). When the key store
cannot be read, :class:`ErasureCheckUnavailable` says so (an API answers 503), rather than
letting an erased person in or keeping everyone out with a 401.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from shared.privacy.keys import Erased, KeyStore
from shared.privacy.settings import PrivacySettings

_DEFAULTS = PrivacySettings()
_FOR_EVER = float("inf")


class ErasureCheckUnavailable(Exception):
    """The key store could not be read to tell whether a person was erased."""


class ErasureCheck:
    """Whether a person of a centre was erased (their data key destroyed). Thread-safe."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        seconds: float = _DEFAULTS.key_cache_seconds,
        size: int = _DEFAULTS.key_cache_size,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._known: OrderedDict[tuple[str, UUID], float] = OrderedDict()
        """(centre, person) → until when "not erased" holds; ``inf``: erased."""
        self._lock = threading.Lock()

    @classmethod
    def of(cls, keys: KeyStore, privacy: PrivacySettings) -> ErasureCheck:
        """The check with the key cache's seconds and size."""
        return cls(keys, seconds=privacy.key_cache_seconds, size=privacy.key_cache_size)

    def erased(self, centre_id: str, person_id: UUID) -> bool:
        """Whether the person was erased in the centre; :class:`ErasureCheckUnavailable` when
        it cannot be told now."""
        remembered = self.known(centre_id, person_id)
        if remembered is not None:
            return remembered
        try:
            found = self.keys.fetch(centre_id, person_id)
        except Exception as error:
            raise ErasureCheckUnavailable(
                f"cannot tell now whether this person's data was erased "
                f"({type(error).__name__}); try again shortly"
            ) from error
        erased = isinstance(found, Erased)
        self._remember(
            (centre_id, person_id), _FOR_EVER if erased else self._clock() + self._seconds
        )
        return erased

    def known(self, centre_id: str, person_id: UUID) -> bool | None:
        """What the check remembers of the person, without reading: ``None`` if nothing (a
        call of :meth:`erased` would read the key store). Remembering counts as asking (the
        least recently asked are forgotten first)."""
        entry = (centre_id, person_id)
        with self._lock:
            until = self._known.get(entry)
            if until is None:
                return None
            if until == _FOR_EVER or self._clock() < until:
                self._known.move_to_end(entry)
                return until == _FOR_EVER
        return None

    def note_erased(self, centre_id: str, person_id: UUID) -> None:
        """The process that erased the person knows it at once."""
        self._remember((centre_id, person_id), _FOR_EVER)

    def _remember(self, entry: tuple[str, UUID], until: float) -> None:
        if self._size == 0:
            return
        with self._lock:
            if self._known.get(entry) == _FOR_EVER:
                return  # a read that began before the erasure must not undo it
            self._known[entry] = until
            self._known.move_to_end(entry)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)
