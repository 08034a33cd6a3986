"""The filesystem store: files in a folder, one subfolder per centre, URLs signed by tutorpulse.

A file appears under its key whole or not at all: it is written to a temporary file in the same
folder (a dot name no key has), flushed to disk, then renamed over the key's name (a rename is
atomic on one filesystem) and the folder is flushed too. A reader therefore never sees a
partial file, and two writers of the same bytes both leave the same complete file.

A URL is ``{base}/{key}?expires=<unix seconds>&signature=<HMAC-SHA256 of key and expiry>``,
served by :mod:`shared.blobs.http` until it expires; changing the key or the expiry breaks the
signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import structlog

from shared.blobs.settings import BlobSettings
from shared.blobs.store import (
    BYTES,
    BlobKey,
    BlobNotFound,
    BlobStoreUnavailable,
    key_for,
    measured,
    parse_key,
)

log = structlog.get_logger(__name__)

STORE = "filesystem"
TEMPORARY_PREFIX = ".incoming-"
"""Files being written start with it (no key does)."""


class UrlRefused(Exception):
    """A blob URL that must not be served: unsigned, altered or expired (403)."""


class UrlSigner:
    """Signs and checks the filesystem store's URLs (HMAC-SHA256 over the key and the expiry)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, key: str, expires: int) -> str:
        message = f"tutorpulse-blob-url\n{key}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, key: str, expires: str | None, signature: str | None, now: float) -> int:
        """The expiry (unix seconds) of a URL that may be served now; :class:`UrlRefused`
        otherwise (no signature, a wrong one, or expired)."""
        if not expires or not signature:
            raise UrlRefused("the URL is not signed: ask for the file's URL again")
        if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
            raise UrlRefused("the URL's expiry is not a time")
        expected = self.signature(key, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise UrlRefused("the URL's signature does not match: it was altered or not issued")
        if int(expires) <= now:
            raise UrlRefused("the URL has expired: ask for the file's URL again")
        return int(expires)


class FilesystemBlobStore:
    def __init__(
        self,
        directory: Path,
        signer: UrlSigner,
        *,
        url_prefix: str = "/api/v1/blobs",
        url_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.signer = signer
        self.url_prefix = url_prefix.rstrip("/")
        self.url_seconds = url_seconds
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: BlobSettings) -> FilesystemBlobStore:
        return cls(
            settings.directory,
            UrlSigner(settings.url_signing_key()),
            url_prefix=settings.url_prefix(),
            url_seconds=settings.url_seconds,
        )

    def path_of(self, key: str | BlobKey) -> Path:
        """Where ``key``'s file is (:class:`InvalidBlobKey` for a malformed key: a key that
        passes has no ``..`` and no ``/`` but the one after the centre)."""
        parsed = key if isinstance(key, BlobKey) else parse_key(key)
        return self.directory / parsed.centre_id / f"{parsed.digest}{parsed.extension}"

    def put(self, centre_id: str, data: bytes, content_type: str) -> str:
        key = key_for(centre_id, data, content_type)
        path = self.path_of(key)
        with measured(STORE, "put", "stored") as outcome:
            if path.is_file():
                outcome.value = "existing"
                return str(key)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(path, data)
            except OSError as error:
                log.warning("blobs.write_failed", key=str(key), error=str(error))
                raise BlobStoreUnavailable(f"cannot write {key}: {error.strerror}") from error
            BYTES.labels(STORE, "put").inc(len(data))
        return str(key)

    def get(self, key: str) -> bytes:
        with measured(STORE, "get", "read"):
            path = self.path_of(key)
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                raise BlobNotFound(f"no stored file {key!r}") from None
            except OSError as error:
                raise BlobStoreUnavailable(f"cannot read {key}: {error.strerror}") from error
            BYTES.labels(STORE, "get").inc(len(data))
            return data

    def delete(self, key: str) -> bool:
        with measured(STORE, "delete", "deleted") as outcome:
            path = self.path_of(key)
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                outcome.value = "missing"
                return False
            except OSError as error:
                log.warning("blobs.delete_failed", key=key, error=str(error))
                raise BlobStoreUnavailable(f"cannot delete {key}: {error.strerror}") from error
            _sync_directory(path.parent)
            return True

    def url(self, key: str) -> str:
        parse_key(key)
        expires = int(self.clock()) + self.url_seconds
        query = urlencode({"expires": expires, "signature": self.signer.signature(key, expires)})
        return f"{self.url_prefix}/{key}?{query}"

    def verify(self, key: str, expires: str | None, signature: str | None) -> int:
        """The expiry of a URL to ``key`` that may be served now (:class:`UrlRefused`)."""
        return self.signer.verify(key, expires, signature, self.clock())

    def check(self) -> None:
        """The folder can be written: a small file is written and removed."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=TEMPORARY_PREFIX) as probe:
                probe.write(b"ready")
                probe.flush()
        except OSError as error:
            raise BlobStoreUnavailable(
                f"the blob folder {self.directory} cannot be written: {error.strerror}"
            ) from error

    def close(self) -> None:
        """Nothing is held open."""


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=TEMPORARY_PREFIX, suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Flush the rename itself to disk (where the platform can open a folder)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
