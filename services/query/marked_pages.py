"""Marked pages: a scanned page drawn with its ink, once per page and ink.

Drawing a page takes about half a second (a second for a 12-megapixel photo), so the query API
draws few at once (``RENDERS_AT_ONCE``, the rest of the API keeps its threads), keeps the
latest drawings in memory up to ``CACHE_BYTES``, and names each by an entity tag of the page and
the ink on it: a browser asking again with ``If-None-Match`` is answered 304 without the page
being read or drawn. The same page and ink always draw the same picture, so a drawing never goes
stale; new ink is a new tag.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import anyio
import msgspec

from shared.blobs import BlobStore
from shared.events.paper import Mark
from shared.readmodels.access import PageInk

PageRenderer = Callable[[bytes, Sequence[Mark]], bytes]
"""Draws the ink on a scanned page: the PNG of the marked page."""

RENDERS_AT_ONCE = 2
CACHE_BYTES = 64 * 1024 * 1024


def entity_tag(ink: PageInk) -> str:
    """The strong entity tag of a page with its ink (quoted, as the header carries it)."""
    digest = hashlib.sha256(ink.blob_key.encode() + b"\n" + msgspec.json.encode(ink.marks))
    return f'"{digest.hexdigest()[:32]}"'


class MarkedPages:
    def __init__(
        self, blobs: BlobStore, render: PageRenderer, *, cache_bytes: int = CACHE_BYTES
    ) -> None:
        self._blobs, self._render = blobs, render
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._capacity = cache_bytes
        self._lock = threading.Lock()
        self.limiter = anyio.CapacityLimiter(RENDERS_AT_ONCE)
        self.drawn = 0
        """How many pages were drawn (not answered from memory)."""

    def draw(self, ink: PageInk) -> bytes:
        """The page with its ink as PNG (blocking: call it in a worker thread)."""
        tag = entity_tag(ink)
        with self._lock:
            cached = self._cache.get(tag)
            if cached is not None:
                self._cache.move_to_end(tag)
                return cached
        png = self._render(self._blobs.get(ink.blob_key), ink.marks)
        with self._lock:
            self.drawn += 1
            if tag not in self._cache and len(png) <= self._capacity:
                self._cache[tag] = png
                self._cached_bytes += len(png)
                while self._cached_bytes > self._capacity:
                    _, dropped = self._cache.popitem(last=False)
                    self._cached_bytes -= len(dropped)
        return png
