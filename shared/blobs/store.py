"""Object storage for uploaded files: what a store does, its keys, its errors and its metrics.

A file is kept under a key named by its content, inside its centre's prefix:
``"{centre_id}/{sha256 of the bytes}{.ext}"`` (the extension says the content type). Storing
the same bytes again gives the same key and stores nothing new. A key is checked before it
reaches a store: only that exact shape is accepted (no ``..``, no leading ``/``, no other
characters), so a key taken from a request cannot name a file outside the store, and
:func:`require_centre` refuses a key of another centre as if it did not exist.

Two stores: :mod:`shared.blobs.filesystem` (a folder; its URLs are signed by tutorpulse and
served by :mod:`shared.blobs.http`) and :mod:`shared.blobs.s3` (any S3-compatible store; its
URLs are the store's presigned GETs). :func:`open_blob_store` picks one by the settings.

The stores are synchronous (files and an HTTP client); async code calls them in a worker thread.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from prometheus_client import Counter, Histogram

from shared.blobs.settings import BlobSettings

OCTET_STREAM = "application/octet-stream"

EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    OCTET_STREAM: ".bin",
}
"""The extension a key gets for each content type kept (any other type is kept as ``.bin``)."""

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/mp3": "audio/mpeg",
}
CONTENT_TYPES: dict[str, str] = {extension: kind for kind, extension in EXTENSIONS.items()}
"""The content type a key's extension stands for."""

_KEY = re.compile(
    r"(?P<centre>[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)/(?P<digest>[0-9a-f]{64})(?P<ext>\.[a-z0-9]{1,5})"
)


class BlobNotFound(LookupError):
    """No file is stored under the key (or the key is not one the caller may read)."""


class InvalidBlobKey(BlobNotFound, ValueError):
    """The text is not a key this storage makes (path traversal, another shape): nothing can be
    stored under it, so it is not found either."""


class BlobStoreUnavailable(RuntimeError):
    """The store cannot be reached or used now; trying later may work (an HTTP service answers
    503 with Retry-After)."""


@dataclass(frozen=True)
class BlobKey:
    centre_id: str
    digest: str
    extension: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.extension]

    def __str__(self) -> str:
        return f"{self.centre_id}/{self.digest}{self.extension}"


def normalised_content_type(content_type: str) -> str:
    """``"Audio/X-WAV; codecs=1"`` → ``"audio/wav"``; a type not kept →
    ``application/octet-stream``."""
    kind = content_type.split(";", 1)[0].strip().lower()
    kind = _ALIASES.get(kind, kind)
    return kind if kind in EXTENSIONS else OCTET_STREAM


def key_for(centre_id: str, data: bytes, content_type: str) -> BlobKey:
    """The key ``data`` is stored under for ``centre_id``; :class:`ValueError` for a centre id
    that is not one."""
    extension = EXTENSIONS[normalised_content_type(content_type)]
    text = f"{centre_id}/{hashlib.sha256(data).hexdigest()}{extension}"
    if _KEY.fullmatch(text) is None:
        raise ValueError(f"not a centre id: {centre_id!r}")
    return parse_key(text)


def parse_key(key: str) -> BlobKey:
    """The parts of ``key``; :class:`InvalidBlobKey` unless it is exactly a key this storage
    makes (``centre/sha256.ext``)."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None or match["ext"] not in CONTENT_TYPES:
        raise InvalidBlobKey(f"not a stored file's key: {key!r}")
    return BlobKey(match["centre"], match["digest"], match["ext"])


def centre_of(key: str) -> str:
    """The centre ``key`` belongs to; :class:`InvalidBlobKey` for a malformed key."""
    return parse_key(key).centre_id


def content_type_of(key: str) -> str:
    """The content type the file under ``key`` is served with."""
    return parse_key(key).content_type


def require_centre(key: str, centre_id: str) -> str:
    """``key`` when it is a well-formed key in ``centre_id``'s prefix; otherwise
    :class:`BlobNotFound` (another centre's file is answered as missing, never served)."""
    if parse_key(key).centre_id != centre_id:
        raise BlobNotFound(f"no stored file {key!r} in centre {centre_id!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    def put(self, centre_id: str, data: bytes, content_type: str) -> str:
        """Store ``data`` for ``centre_id``; its key (the same key, stored once, for the same
        bytes). :class:`BlobStoreUnavailable` when the store cannot be written."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; :class:`BlobNotFound` (also for a malformed key)."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the file under ``key`` (a person's erasure); ``False`` if there was none (so
        deleting twice is harmless). :class:`InvalidBlobKey` for a malformed key,
        :class:`BlobStoreUnavailable` when the store cannot be written. The key is the file's
        content: another upload of the very same bytes in the centre loses its file too."""
        ...

    def url(self, key: str) -> str:
        """A signed URL that serves ``key`` for a short time (``TUTORPULSE_BLOB_URL_SECONDS``).
        Check the caller's centre first (:func:`require_centre`): the URL works for anyone
        holding it."""
        ...

    def check(self) -> None:
        """Readiness: returns when the store can be used, raises :class:`BlobStoreUnavailable`
        (quickly: timeouts are short) when not."""
        ...

    def close(self) -> None: ...


def open_blob_store(settings: BlobSettings) -> BlobStore:
    """The store the settings name; :class:`shared.settings.SettingsError` when they are
    incomplete (no URL key outside development mode, no S3 endpoint, half the S3 keys)."""
    if settings.store == "s3":
        from shared.blobs.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    from shared.blobs.filesystem import FilesystemBlobStore

    return FilesystemBlobStore.from_settings(settings)


# --- metrics --------------------------------------------------------------------------------

OPERATIONS = Counter(
    "tutorpulse_blob_operations_total",
    "Blob store operations, by store, operation (put, get, delete) and outcome "
    "(stored, existing, read, deleted, missing, unavailable)",
    ["store", "operation", "outcome"],
)
SECONDS = Histogram(
    "tutorpulse_blob_operation_seconds",
    "Time a blob store put, get or delete took",
    ["store", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BYTES = Counter(
    "tutorpulse_blob_bytes_total",
    "Bytes written to (put) and read from (get) the blob store",
    ["store", "operation"],
)


class Outcome:
    """What a measured operation came to; set by the code inside :func:`measured`."""

    def __init__(self, default: str) -> None:
        self.value = default


@contextmanager
def measured(store: str, operation: str, outcome: str) -> Iterator[Outcome]:
    """Count and time one put or get: its outcome is ``outcome`` unless the body sets another,
    ``missing`` when it raises :class:`BlobNotFound`, ``unavailable`` when
    :class:`BlobStoreUnavailable`, ``failed`` for anything else."""
    result = Outcome(outcome)
    started = time.perf_counter()
    try:
        yield result
    except BlobNotFound:
        result.value = "missing"
        raise
    except BlobStoreUnavailable:
        result.value = "unavailable"
        raise
    except BaseException:
        result.value = "failed"
        raise
    finally:
        SECONDS.labels(store, operation).observe(time.perf_counter() - started)
        OPERATIONS.labels(store, operation, result.value).inc()
