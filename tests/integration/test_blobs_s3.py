"""Blob storage against a real S3-compatible server (moto, on 127.0.0.1): the same behaviour as
the filesystem store where both apply, presigned URLs fetched over HTTP, and an outage."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from minio import Minio
from prometheus_client import REGISTRY

from shared.blobs import (
    BlobNotFound,
    BlobSettings,
    BlobStore,
    BlobStoreUnavailable,
    InvalidBlobKey,
    open_blob_store,
    require_centre,
)
from shared.blobs.s3 import S3BlobStore
from shared.settings import load
from tests.support.servers import S3Server, running_s3

JPEG = b"\xff\xd8\xff\xe0" + b"scan of a worksheet page " * 400
_buckets = itertools.count()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3() as server:
        yield server


def s3_store(server: S3Server, **extra: str) -> S3BlobStore:
    bucket = f"blobs-{next(_buckets)}-{time.monotonic_ns()}"
    store = open_blob_store(load(BlobSettings, server.env(bucket) | extra))
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "s3":
        made: BlobStore = s3_store(request.getfixturevalue("s3"))
    else:
        made = open_blob_store(
            load(
                BlobSettings,
                {"TUTORPULSE_BLOB_DIR": str(tmp_path / "blobs"), "TUTORPULSE_DEV_MODE": "1"},
            )
        )
    yield made
    made.close()


def puts(outcome: str) -> float:
    total = 0.0
    for name in ("filesystem", "s3"):
        labels = {"store": name, "operation": "put", "outcome": outcome}
        total += REGISTRY.get_sample_value("tutorpulse_blob_operations_total", labels) or 0.0
    return total


# --- both stores ----------------------------------------------------------------------------


def test_put_is_content_addressed_in_the_centres_prefix_and_get_returns_the_bytes(
    store: BlobStore,
) -> None:
    key = store.put("north", JPEG, "image/jpeg")
    assert key.startswith("north/") and key.endswith(".jpg")
    assert store.get(key) == JPEG
    other = store.put("north", JPEG + b"!", "image/jpeg")
    assert other != key and store.get(other) == JPEG + b"!"
    assert store.put("south", JPEG, "image/jpeg").startswith("south/")


def test_the_same_bytes_are_stored_once(store: BlobStore) -> None:
    stored, existing = puts("stored"), puts("existing")
    first = store.put("north", JPEG, "image/jpeg")
    assert store.put("north", JPEG, "image/jpeg") == first
    assert (puts("stored"), puts("existing")) == (stored + 1, existing + 1)


def test_a_missing_key_is_not_found_and_a_key_from_outside_is_refused(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.get("north/" + "0" * 64 + ".jpg")
    for outside in ("../north/" + "0" * 64 + ".jpg", "/etc/passwd", "north/../../etc/passwd"):
        with pytest.raises(InvalidBlobKey):
            store.get(outside)
        with pytest.raises(InvalidBlobKey):
            store.url(outside)


def test_a_centre_asking_for_its_own_file_never_gets_another_centres(store: BlobStore) -> None:
    theirs = store.put("south", JPEG, "image/jpeg")
    with pytest.raises(BlobNotFound):
        store.get(require_centre(theirs, "north"))
    assert store.get(require_centre(theirs, "south")) == JPEG


def test_check_passes_on_a_working_store(store: BlobStore) -> None:
    store.check()


def test_a_deleted_file_is_gone_and_deleting_it_again_is_nothing(store: BlobStore) -> None:
    key = store.put("north", JPEG, "image/jpeg")
    kept = store.put("north", JPEG + b"!", "image/jpeg")
    assert store.delete(key) is True
    with pytest.raises(BlobNotFound):
        store.get(key)
    assert store.delete(key) is False  # an erasure delivered twice
    assert store.get(kept) == JPEG + b"!"
    with pytest.raises(InvalidBlobKey):
        store.delete("north/../../etc/passwd")


# --- the S3 store ---------------------------------------------------------------------------


def test_the_bucket_is_made_when_missing(s3: S3Server) -> None:
    store = s3_store(s3)
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    assert not client.bucket_exists(store.bucket)
    key = store.put("north", JPEG, "image/jpeg")
    assert client.bucket_exists(store.bucket)
    stat = client.stat_object(store.bucket, key)
    assert stat.content_type == "image/jpeg"
    assert stat.size == len(JPEG)
    store.close()


def test_a_presigned_url_fetches_the_bytes_and_is_valid_for_the_set_seconds(
    s3: S3Server,
) -> None:
    store = s3_store(s3, TUTORPULSE_BLOB_URL_SECONDS="60")
    key = store.put("north", JPEG, "image/jpeg")
    signed_at = datetime.now(UTC)
    url = store.url(key)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == JPEG
    assert response.headers["content-type"] == "image/jpeg"
    parts = urlsplit(url)
    assert parts.netloc == s3.endpoint and parts.path == f"/{store.bucket}/{key}"
    query = parse_qs(parts.query)
    # S3 refuses the URL once X-Amz-Date + X-Amz-Expires has passed; both are signed.
    assert query["X-Amz-Expires"] == ["60"]
    dated = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((dated - signed_at).total_seconds()) < 5
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Signature"][0]
    assert query["response-cache-control"] == ["private, max-age=60"]
    store.close()


def test_an_unreachable_store_fails_fast_and_works_again_when_it_is_back(s3: S3Server) -> None:
    store = s3_store(s3)
    key = store.put("north", JPEG, "image/jpeg")
    s3.stop()
    try:
        for attempt in (
            store.check,
            lambda: store.get(key),
            lambda: store.put("north", b"x", "image/png"),
        ):
            started = time.monotonic()
            with pytest.raises(BlobStoreUnavailable):
                attempt()
            assert time.monotonic() - started < 5, "bounded by the client's timeouts and retries"
        assert f"/{store.bucket}/{key}?" in store.url(key)  # signed here: the store is not asked
    finally:
        s3.start()
    store.check()
    assert store.get(key) == JPEG
    store.close()


def test_a_store_that_does_not_answer_times_out() -> None:
    """A port that accepts connections but never answers: the read timeout ends the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = load(
            BlobSettings,
            {
                "TUTORPULSE_BLOB_STORE": "s3",
                "TUTORPULSE_S3_ENDPOINT": f"127.0.0.1:{port}",
                "TUTORPULSE_S3_SECURE": "no",
            },
        )
        store = S3BlobStore.from_settings(settings, connect_seconds=0.5, read_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(BlobStoreUnavailable):
            store.check()
        assert time.monotonic() - started < 3
        store.close()
