"""Object storage for uploaded files: content-addressed keys in per-centre prefixes, signed
short-lived URLs, a filesystem store by default and any S3-compatible store by settings."""

from shared.blobs.settings import BlobSettings
from shared.blobs.store import (
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    InvalidBlobKey,
    centre_of,
    content_type_of,
    open_blob_store,
    require_centre,
)

__all__ = [
    "BlobNotFound",
    "BlobSettings",
    "BlobStore",
    "BlobStoreUnavailable",
    "InvalidBlobKey",
    "centre_of",
    "content_type_of",
    "open_blob_store",
    "require_centre",
]
