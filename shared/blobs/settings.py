"""Where uploaded files (scans, marked pages, voice comments) are kept: a folder on this machine
(the default, under ``var/``) or any S3-compatible object store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shared.settings import SettingsError, setting
from shared.tenancy.settings import JwtSettings

DEV_URL_KEY = "tutorpulse-dev-blob-url-key-change-me-in-production"
"""Public (it is in the source): signs filesystem URLs only in development mode."""
MIN_URL_KEY_BYTES = 32


def _declared_by(cls: type[Any], name: str) -> Any:
    """The field ``name`` of ``cls`` as it is declared there: a variable read by two groups is
    declared once (here: development mode, which the JWT settings declare)."""
    original = next(item for item in dataclasses.fields(cls) if item.name == name)
    return dataclasses.field(default=original.default, metadata=original.metadata)


def _endpoint(text: str) -> str:
    endpoint = text.strip()
    if "://" in endpoint or "/" in endpoint:
        raise ValueError(
            f"write host:port (TLS is TUTORPULSE_S3_SECURE), not a URL or a path: {text!r}"
        )
    return endpoint


@dataclass(frozen=True)
class BlobSettings:
    store: Literal["filesystem", "s3"] = setting(
        "TUTORPULSE_BLOB_STORE",
        "filesystem",
        "where uploaded files are kept: `filesystem` (a folder) or `s3` (any S3-compatible store)",
    )
    directory: Path = setting(
        "TUTORPULSE_BLOB_DIR",
        Path("var/blobs"),
        "the filesystem store's folder (created; one subfolder per centre)",
    )
    s3_endpoint: str | None = setting(
        "TUTORPULSE_S3_ENDPOINT",
        None,
        "the S3-compatible store's `host:port` (required with `s3`)",
        parse=_endpoint,
    )
    s3_bucket: str = setting(
        "TUTORPULSE_S3_BUCKET", "tutorpulse", "the bucket uploaded files go in (made if missing)"
    )
    s3_access_key: str | None = setting(
        "TUTORPULSE_S3_ACCESS_KEY", None, "the S3 access key (with the secret key)"
    )
    s3_secret_key: str | None = setting(
        "TUTORPULSE_S3_SECRET_KEY",
        None,
        "the S3 secret key",
        secret=True,
    )
    s3_region: str = setting(
        "TUTORPULSE_S3_REGION",
        "us-east-1",
        "the bucket's region (given, so that signing a URL asks the store nothing)",
    )
    s3_secure: bool = setting("TUTORPULSE_S3_SECURE", True, "reach the S3 store over TLS")
    url_seconds: int = setting(
        "TUTORPULSE_BLOB_URL_SECONDS",
        300,
        "how long a signed URL to an uploaded file stays valid",
        minimum=1,
        maximum=7 * 24 * 3600,
    )
    url_key: str | None = setting(
        "TUTORPULSE_BLOB_URL_KEY",
        None,
        "signs the filesystem store's URLs, at least 32 bytes; required outside development mode",
        secret=True,
    )
    url_base: str = setting(
        "TUTORPULSE_BLOB_URL_BASE",
        "/api/v1/blobs",
        "where the query API serves the filesystem store's files (the start of their URLs)",
    )
    dev_mode: bool = _declared_by(JwtSettings, "dev_mode")

    def url_signing_key(self) -> bytes:
        """The key filesystem URLs are signed with: ``TUTORPULSE_BLOB_URL_KEY``, or in
        development mode (only) the public development key; :class:`SettingsError` otherwise."""
        key = self.url_key or ""
        if not key:
            if not self.dev_mode:
                raise SettingsError(
                    "TUTORPULSE_BLOB_URL_KEY is not set: set it (at least 32 random bytes, e.g. "
                    "`openssl rand -base64 48`) to sign the URLs of stored files, or "
                    "TUTORPULSE_DEV_MODE=1 to accept the public development key on a "
                    "development machine"
                )
            key = DEV_URL_KEY
        if len(key.encode()) < MIN_URL_KEY_BYTES:
            raise SettingsError(
                f"TUTORPULSE_BLOB_URL_KEY has {len(key.encode())} bytes; use at least "
                f"{MIN_URL_KEY_BYTES} random bytes"
            )
        return key.encode()

    def s3_credentials(self) -> tuple[str, str] | None:
        """The access and secret key, or None for anonymous access; :class:`SettingsError`
        when only one of them is set, or the endpoint is missing."""
        if not self.s3_endpoint:
            raise SettingsError("TUTORPULSE_BLOB_STORE=s3 needs TUTORPULSE_S3_ENDPOINT (host:port)")
        if bool(self.s3_access_key) != bool(self.s3_secret_key):
            raise SettingsError(
                "TUTORPULSE_S3_ACCESS_KEY and TUTORPULSE_S3_SECRET_KEY go together: set both "
                "(or neither, for anonymous access)"
            )
        if self.s3_access_key and self.s3_secret_key:
            return self.s3_access_key, self.s3_secret_key
        return None

    def url_prefix(self) -> str:
        """``url_base`` as one path: a leading slash, no trailing one."""
        base = "/" + self.url_base.strip().strip("/")
        if base == "/":
            raise SettingsError("TUTORPULSE_BLOB_URL_BASE must name a path, not the root")
        return base
