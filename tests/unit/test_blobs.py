"""Blob storage without a network: keys, settings, the filesystem store and its signed URLs as
the query API serves them."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from shared.blobs import (
    BlobNotFound,
    BlobSettings,
    BlobStoreUnavailable,
    InvalidBlobKey,
    centre_of,
    content_type_of,
    open_blob_store,
    require_centre,
)
from shared.blobs.filesystem import FilesystemBlobStore, UrlSigner
from shared.blobs.http import blob_route
from shared.blobs.settings import DEV_URL_KEY
from shared.blobs.store import key_for, parse_key
from shared.settings import SettingsError, load

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
URL_KEY = "k" * 40


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> FilesystemBlobStore:
    return FilesystemBlobStore(
        tmp_path / "blobs", UrlSigner(URL_KEY.encode()), url_seconds=300, clock=clock
    )


def operations(store: str, operation: str, outcome: str) -> float:
    labels = {"store": store, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("tutorpulse_blob_operations_total", labels) or 0.0


# --- keys -----------------------------------------------------------------------------------


def test_a_key_is_the_centre_then_the_content_hash_then_the_type() -> None:
    key = key_for("north-centre", PNG, "image/png")
    assert str(key) == f"north-centre/{hashlib.sha256(PNG).hexdigest()}.png"
    assert centre_of(str(key)) == "north-centre"
    assert content_type_of(str(key)) == "image/png"
    assert str(key_for("north-centre", PNG, "image/png")) == str(key)
    assert str(key_for("south-centre", PNG, "image/png")) != str(key)


@pytest.mark.parametrize(
    ("declared", "extension", "served"),
    [
        ("image/jpeg", ".jpg", "image/jpeg"),
        ("IMAGE/JPG", ".jpg", "image/jpeg"),
        ("audio/ogg; codecs=opus", ".ogg", "audio/ogg"),
        ("audio/x-wav", ".wav", "audio/wav"),
        ("audio/x-m4a", ".m4a", "audio/mp4"),
        ("text/html", ".bin", "application/octet-stream"),
    ],
)
def test_a_content_type_is_kept_as_a_known_one_or_as_bytes(
    declared: str, extension: str, served: str
) -> None:
    key = str(key_for("c1", b"x", declared))
    assert key.endswith(extension)
    assert content_type_of(key) == served


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/etc/passwd",
        "c1/../../etc/passwd",
        "c1/" + "a" * 64,  # no type
        "c1/" + "a" * 64 + ".exe",
        "c1/" + "A" * 64 + ".png",
        "c1/" + "a" * 63 + ".png",
        "c1/" + "a" * 64 + ".png\n",
        "c1/" + "a" * 64 + ".png/x",
        "C1/" + "a" * 64 + ".png",
        "c1//" + "a" * 64 + ".png",
        "c1\\" + "a" * 64 + ".png",
        "-c1/" + "a" * 64 + ".png",
        "",
    ],
)
def test_a_key_from_outside_that_is_not_one_this_storage_makes_is_refused(key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        parse_key(key)
    assert issubclass(InvalidBlobKey, BlobNotFound)


def test_a_centre_id_that_is_not_one_makes_no_key() -> None:
    with pytest.raises(ValueError, match="not a centre id"):
        key_for("../other", PNG, "image/png")


def test_another_centres_key_is_missing_for_a_centre_asking_for_its_own() -> None:
    key = str(key_for("north", PNG, "image/png"))
    assert require_centre(key, "north") == key
    with pytest.raises(BlobNotFound):
        require_centre(key, "south")
    with pytest.raises(BlobNotFound):
        require_centre("../" + key, "north")


# --- settings -------------------------------------------------------------------------------


def test_outside_development_mode_the_url_key_must_be_set() -> None:
    settings = load(BlobSettings, {})
    with pytest.raises(SettingsError, match="TUTORPULSE_BLOB_URL_KEY is not set"):
        settings.url_signing_key()
    with pytest.raises(SettingsError, match="TUTORPULSE_BLOB_URL_KEY is not set"):
        open_blob_store(settings)


def test_development_mode_accepts_the_public_key_and_a_set_key_wins() -> None:
    assert load(BlobSettings, {"TUTORPULSE_DEV_MODE": "1"}).url_signing_key() == (
        DEV_URL_KEY.encode()
    )
    with_key = load(BlobSettings, {"TUTORPULSE_DEV_MODE": "1", "TUTORPULSE_BLOB_URL_KEY": URL_KEY})
    assert with_key.url_signing_key() == URL_KEY.encode()


def test_a_short_url_key_is_refused() -> None:
    settings = load(BlobSettings, {"TUTORPULSE_BLOB_URL_KEY": "short"})
    with pytest.raises(SettingsError, match="at least 32"):
        settings.url_signing_key()


def test_the_s3_store_needs_an_endpoint_and_both_keys_or_neither() -> None:
    with pytest.raises(SettingsError, match="TUTORPULSE_S3_ENDPOINT"):
        open_blob_store(load(BlobSettings, {"TUTORPULSE_BLOB_STORE": "s3"}))
    half = {
        "TUTORPULSE_BLOB_STORE": "s3",
        "TUTORPULSE_S3_ENDPOINT": "127.0.0.1:9000",
        "TUTORPULSE_S3_ACCESS_KEY": "someone",
    }
    with pytest.raises(SettingsError, match="go together"):
        open_blob_store(load(BlobSettings, half))
    with pytest.raises(SettingsError, match="TUTORPULSE_S3_ENDPOINT: write host:port"):
        load(BlobSettings, {"TUTORPULSE_S3_ENDPOINT": "https://s3.example.com"})
    with pytest.raises(SettingsError, match="TUTORPULSE_BLOB_STORE"):
        load(BlobSettings, {"TUTORPULSE_BLOB_STORE": "ftp"})


def test_the_default_store_is_a_folder_under_var(tmp_path: Path) -> None:
    settings = load(BlobSettings, {"TUTORPULSE_DEV_MODE": "1"})
    assert settings.directory == Path("var/blobs")
    assert settings.url_prefix() == "/api/v1/blobs"
    chosen = load(
        BlobSettings,
        {"TUTORPULSE_BLOB_URL_KEY": URL_KEY, "TUTORPULSE_BLOB_DIR": str(tmp_path / "files")},
    )
    store = open_blob_store(chosen)
    assert isinstance(store, FilesystemBlobStore)
    key = store.put("c1", PNG, "image/png")
    assert (tmp_path / "files" / key).read_bytes() == PNG


# --- the filesystem store -------------------------------------------------------------------


def test_the_same_bytes_are_stored_once_under_one_key(store: FilesystemBlobStore) -> None:
    before = operations("filesystem", "put", "existing")
    first = store.put("c1", PNG, "image/png")
    second = store.put("c1", PNG, "image/png")
    assert first == second
    assert store.get(first) == PNG
    assert [p.name for p in (store.directory / "c1").iterdir()] == [first.split("/")[1]]
    assert operations("filesystem", "put", "existing") == before + 1


def test_a_missing_or_malformed_key_is_not_found(store: FilesystemBlobStore) -> None:
    missing = str(key_for("c1", b"never stored", "image/png"))
    with pytest.raises(BlobNotFound):
        store.get(missing)
    (store.directory.parent / "secret.png").write_bytes(b"outside the store")
    with pytest.raises(InvalidBlobKey):
        store.get("../secret.png")
    with pytest.raises(InvalidBlobKey):
        store.get(str(store.directory.parent / "secret.png"))


def test_a_write_that_fails_leaves_nothing_under_the_key(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_fails(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_fails)
    with pytest.raises(BlobStoreUnavailable, match="No space left"):
        store.put("c1", PNG, "image/png")
    monkeypatch.undo()
    assert list((store.directory / "c1").iterdir()) == []  # no partial file, no temporary one
    key = store.put("c1", PNG, "image/png")
    assert store.get(key) == PNG


def test_a_reader_never_sees_a_partial_file(store: FilesystemBlobStore) -> None:
    """Readers poll the key while writers store a large file: each read is missing or whole."""
    data = os.urandom(4 * 1024 * 1024)
    key = str(key_for("c1", data, "image/png"))
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set() or not seen or seen[-1] != len(data):
            try:
                seen.append(len(store.get(key)))
            except BlobNotFound:
                seen.append(-1)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    writers = [threading.Thread(target=store.put, args=("c1", data, "image/png")) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    done.set()
    for reader in readers:
        reader.join()
    assert set(seen) <= {-1, len(data)}
    assert seen[-1] == len(data)
    assert [p.name for p in (store.directory / "c1").iterdir()] == [key.split("/")[1]]


def test_check_says_whether_the_folder_can_be_written(tmp_path: Path) -> None:
    signer = UrlSigner(URL_KEY.encode())
    FilesystemBlobStore(tmp_path / "fresh", signer).check()
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(BlobStoreUnavailable, match="cannot be written"):
        FilesystemBlobStore(tmp_path / "a-file", signer).check()
    with pytest.raises(BlobStoreUnavailable):
        FilesystemBlobStore(tmp_path / "a-file", signer).put("c1", PNG, "image/png")


# --- signed URLs, served ----------------------------------------------------------------------


@pytest.fixture
def client(store: FilesystemBlobStore) -> Iterator[TestClient[Litestar]]:
    settings = load(BlobSettings, {"TUTORPULSE_BLOB_URL_KEY": URL_KEY})
    with TestClient(Litestar(route_handlers=[blob_route(store, settings)])) as test_client:
        yield test_client


def test_a_signed_url_serves_the_file_with_its_type_never_sniffed(
    store: FilesystemBlobStore, client: TestClient[Litestar], clock: Clock
) -> None:
    key = store.put("c1", PNG, "image/png")
    url = store.url(key)
    assert url.startswith(f"/api/v1/blobs/{key}?")
    clock.now += 100
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, max-age=200"


def test_an_expired_url_is_refused(
    store: FilesystemBlobStore, client: TestClient[Litestar], clock: Clock
) -> None:
    url = store.url(store.put("c1", PNG, "image/png"))
    clock.now += 299
    assert client.get(url).status_code == 200
    clock.now += 1
    response = client.get(url)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "expired" in response.json()["detail"]


def test_an_altered_url_is_refused(
    store: FilesystemBlobStore, client: TestClient[Litestar]
) -> None:
    key = store.put("c1", PNG, "image/png")
    other = store.put("c2", PNG, "image/png")
    url = store.url(key)
    path, query = urlsplit(url).path, parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    altered = [
        f"/api/v1/blobs/{other}?" + urlencode({"expires": expires, "signature": signature}),
        path + "?" + urlencode({"expires": int(expires) + 3600, "signature": signature}),
        path + "?" + urlencode({"expires": expires, "signature": signature[:-2] + "AA"}),
        path + "?" + urlencode({"expires": expires}),
        path + "?" + urlencode({"expires": "soon", "signature": signature}),
        path,
    ]
    for attempt in altered:
        response = client.get(attempt)
        assert response.status_code == 403, attempt
        assert response.headers["content-type"].startswith("application/problem+json")
    forged = UrlSigner(b"x" * 40).signature(key, int(expires))
    assert (
        client.get(path + "?" + urlencode({"expires": expires, "signature": forged})).status_code
        == 403
    )


def test_a_signed_url_to_nothing_or_outside_the_store_is_not_found(
    store: FilesystemBlobStore, client: TestClient[Litestar]
) -> None:
    missing = str(key_for("c1", b"never stored", "image/png"))
    response = client.get(store.url(missing))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    store.directory.mkdir(parents=True, exist_ok=True)
    (store.directory / "secret.txt").write_text("not a blob")
    assert client.get("/api/v1/blobs/secret.txt?expires=1&signature=x").status_code == 404
    assert client.get("/api/v1/blobs/c1/%2e%2e/secret.txt").status_code == 404


def test_a_store_that_cannot_be_read_is_a_503_with_retry_after(
    store: FilesystemBlobStore, client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store.url(store.put("c1", PNG, "image/png"))

    def unreadable(key: str) -> bytes:
        raise BlobStoreUnavailable("disk gone")

    monkeypatch.setattr(store, "get", unreadable)
    response = client.get(url)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"


def test_the_route_is_in_the_openapi_document_without_a_bearer_token(
    client: TestClient[Litestar],
) -> None:
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"]["/api/v1/blobs/{key}"]["get"]
    assert operation["security"] == [{}]
    assert {p["name"] for p in operation["parameters"]} == {"key", "expires", "signature"}


def test_with_the_s3_store_the_route_serves_nothing() -> None:
    """S3 URLs point at the store itself: the query API's route answers 404 to everything."""
    settings = load(
        BlobSettings,
        {
            "TUTORPULSE_BLOB_STORE": "s3",
            "TUTORPULSE_S3_ENDPOINT": "127.0.0.1:9",
            "TUTORPULSE_BLOB_URL_KEY": URL_KEY,
        },
    )
    s3 = open_blob_store(settings)
    key = str(key_for("c1", PNG, "image/png"))
    expires = 4_000_000_000
    query = urlencode(
        {"expires": expires, "signature": UrlSigner(URL_KEY.encode()).signature(key, expires)}
    )
    with TestClient(Litestar(route_handlers=[blob_route(s3, settings)])) as test_client:
        assert test_client.get(f"/api/v1/blobs/{key}?{query}").status_code == 404
    s3.close()
