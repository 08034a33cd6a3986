"""The S3 store: any S3-compatible object store (AWS S3, MinIO, Ceph, …) through the MinIO client.

The client's HTTP pool has short timeouts and few retries, so a store that is down or does not
answer makes a put, a get or the readiness check fail within seconds
(:class:`BlobStoreUnavailable`, a 503) instead of holding a request. The bucket is made on first
use if it is missing. A URL is the store's own presigned GET, valid for
``url_seconds``: the browser fetches the file from the store, which checks the signature and
the expiry.
"""

from __future__ import annotations

import io
from datetime import timedelta

import structlog
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from shared.blobs.settings import BlobSettings
from shared.blobs.store import (
    BYTES,
    BlobNotFound,
    BlobStoreUnavailable,
    content_type_of,
    key_for,
    measured,
    parse_key,
)

log = structlog.get_logger(__name__)

STORE = "s3"
CONNECT_SECONDS = 2.0
READ_SECONDS = 5.0
MISSING = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"})
BUCKET_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


def http_pool(
    *, connect_seconds: float = CONNECT_SECONDS, read_seconds: float = READ_SECONDS
) -> urllib3.PoolManager:
    """The client's connections: bounded waits, at most one retry (of a refused or dropped
    connection, a read that timed out, or a 5xx answer), TLS certificates checked against the
    system's authorities. A store that does not answer fails a call within two tries of
    ``connect_seconds + read_seconds``."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_seconds, read=read_seconds),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        retries=urllib3.Retry(
            total=1,
            connect=1,
            read=1,
            status=1,
            backoff_factor=0.1,
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
        ),
    )


class S3BlobStore:
    def __init__(self, client: Minio, bucket: str, http: urllib3.PoolManager, url_seconds: int):
        self.client = client
        self.bucket = bucket
        self.url_seconds = url_seconds
        self._http = http
        self._bucket_ready = False

    @classmethod
    def from_settings(
        cls,
        settings: BlobSettings,
        *,
        connect_seconds: float = CONNECT_SECONDS,
        read_seconds: float = READ_SECONDS,
    ) -> S3BlobStore:
        credentials = settings.s3_credentials()
        endpoint = settings.s3_endpoint or ""
        http = http_pool(connect_seconds=connect_seconds, read_seconds=read_seconds)
        client = Minio(
            endpoint,
            access_key=credentials[0] if credentials else None,
            secret_key=credentials[1] if credentials else None,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )
        return cls(client, settings.s3_bucket, http, settings.url_seconds)

    def _unavailable(self, doing: str, error: Exception) -> BlobStoreUnavailable:
        log.warning("blobs.s3_unavailable", doing=doing, bucket=self.bucket, error=str(error))
        return BlobStoreUnavailable(f"the S3 store cannot {doing}: {error}")

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                    log.info("blobs.bucket_made", bucket=self.bucket)
                except S3Error as error:
                    if error.code not in BUCKET_EXISTS:
                        raise
        except (MinioException, urllib3.exceptions.HTTPError, ValueError) as error:
            raise self._unavailable(f"reach the bucket {self.bucket!r}", error) from error
        self._bucket_ready = True

    def put(self, centre_id: str, data: bytes, content_type: str) -> str:
        key = key_for(centre_id, data, content_type)
        with measured(STORE, "put", "stored") as outcome:
            self._ensure_bucket()
            try:
                if self._exists(str(key)):
                    outcome.value = "existing"
                    return str(key)
                self.client.put_object(
                    self.bucket,
                    str(key),
                    io.BytesIO(data),
                    len(data),
                    content_type=key.content_type,
                )
            except (MinioException, urllib3.exceptions.HTTPError) as error:
                raise self._unavailable(f"store {key}", error) from error
            BYTES.labels(STORE, "put").inc(len(data))
        return str(key)

    def _exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, key)
        except S3Error as error:
            if error.code in MISSING:
                return False
            raise
        return True

    def get(self, key: str) -> bytes:
        with measured(STORE, "get", "read"):
            parse_key(key)
            try:
                response = self.client.get_object(self.bucket, key)
                try:
                    data = response.read()
                finally:
                    response.close()
                    response.release_conn()
            except S3Error as error:
                if error.code in MISSING:
                    raise BlobNotFound(f"no stored file {key!r}") from None
                raise self._unavailable(f"read {key}", error) from error
            except (MinioException, urllib3.exceptions.HTTPError) as error:
                raise self._unavailable(f"read {key}", error) from error
            BYTES.labels(STORE, "get").inc(len(data))
            return data

    def delete(self, key: str) -> bool:
        with measured(STORE, "delete", "deleted") as outcome:
            parse_key(key)
            self._ensure_bucket()
            try:
                if not self._exists(key):
                    outcome.value = "missing"
                    return False
                self.client.remove_object(self.bucket, key)
            except (MinioException, urllib3.exceptions.HTTPError) as error:
                raise self._unavailable(f"delete {key}", error) from error
            return True

    def url(self, key: str) -> str:
        """The store's presigned GET of ``key`` (signed here; the store is not asked)."""
        content_type = content_type_of(key)
        return self.client.presigned_get_object(
            self.bucket,
            key,
            expires=timedelta(seconds=self.url_seconds),
            response_headers={
                "response-content-type": content_type,
                "response-cache-control": f"private, max-age={self.url_seconds}",
            },
        )

    def check(self) -> None:
        """The bucket can be reached (and is made if missing)."""
        self._bucket_ready = False
        self._ensure_bucket()

    def close(self) -> None:
        self._http.clear()
