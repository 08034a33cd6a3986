"""Paper work from the command API to the query API: a photographed worksheet handed in,
filed by its QR code, seen in the tutor's marking queue and the Control Center, marked in ink
through the commands, and read back (the marked page drawn, the marking replayed) by the
student, with the scan served from the blob store by its signed URL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from PIL import Image

from services.command.application import TutoringCentres
from services.query.app import create_app as query_app
from shared import events
from shared.blobs import BlobStore
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from tests.api.test_paper import hand_in, pages_of, photo, print_sheets, set_work
from tests.builders import Centre
from tests.readside import read_store


@pytest.fixture
def reads(tmp_path: Path) -> Iterator[ReadStore]:
    store = read_store(tmp_path, "reads.sqlite")
    yield store
    store.close()


def project(centres: TutoringCentres, store: ReadStore) -> None:
    """Everything the command side recorded so far, projected as the projection service does."""
    after = store.watermark()
    history = [
        (events.decode(n.state), n.id)
        for n in centres.recorder.select_notifications(after + 1, 100_000)
    ]
    apply_all(store, history)
    if history:
        store.advance_watermark(history[-1][1])


def read(query: TestClient[Litestar], url: str, centre: Centre, who: str) -> Any:
    response = query.get(url, headers=centre.auth(who))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_scan_handed_in_is_read_back_marked(
    client: TestClient[Litestar],
    centres: TutoringCentres,
    alpha: Centre,
    blobs: BlobStore,
    reads: ReadStore,
) -> None:
    session, _ = set_work(client, alpha, "ann", "ben")
    sheets = pages_of(print_sheets(client, alpha, session))
    answers = [hand_in(client, alpha, "ann", photo(sheet, degrees=5)) for sheet in sheets]
    (mine,) = [a for a in answers if a["status"] == "ROUTED"]
    (refused,) = [a for a in answers if a["status"] == "UNROUTABLE"]
    upload = f"/api/v1/paper/uploads/{mine['uploadId']}"
    project(centres, reads)

    keys = centres.privacy.keys if centres.privacy else None
    with TestClient(query_app(reads, blobs=blobs, own_resources=False, keys=keys)) as query:
        queue = read(query, "/api/academic/tutor/my-day", alpha, "tutor")["paperToMark"]
        assert [(p["uploadId"], p["status"]) for p in queue] == [
            (mine["uploadId"], "AWAITING_MARKING")
        ]
        centre = read(query, f"/api/v1/sessions/{session}/control-center", alpha, "tutor")
        (ann,) = [s for s in centre["students"] if s["studentId"] == str(alpha["ann"].user_id)]
        assert ann["paper"]["handedIn"] == 1 and ann["paper"]["lastUploadId"] == mine["uploadId"]
        lost = read(query, "/api/v1/paper/uploads?status=UNROUTABLE", alpha, "supervisor")
        assert [u["uploadId"] for u in lost["uploads"]] == [refused["uploadId"]]
        assert lost["uploads"][0]["unroutableReason"] == "the worksheet is someone else's"
        assert query.get(upload, headers=alpha.auth("ben")).status_code == 404

        # The scan is served by its signed URL, upright and without its photo's metadata.
        page = read(query, upload, alpha, "ann")["pages"][0]
        # (From the query API with the filesystem store, from the S3 store itself with S3.)
        scan = httpx.get(page["url"]) if page["url"].startswith("http") else query.get(page["url"])
        assert scan.status_code == 200
        stored = Image.open(io.BytesIO(scan.content))
        assert stored.size == (page["width"], page["height"]) and not stored.getexif()

    tutor = alpha.auth("tutor")
    tick = {"page": 0, "mark": {"type": "stamp", "kind": "TICK", "at": [0.5, 0.5], "size": 0.1}}
    first = client.post(f"{upload}/annotations", json=tick, headers=tutor)
    assert first.status_code == 201, first.text
    stroke = {"page": 0, "mark": {"type": "stroke", "points": [[0.1, 0.9], [0.9, 0.9]]}}
    assert client.post(f"{upload}/annotations", json=stroke, headers=tutor).is_success
    erased = client.delete(f"{upload}/annotations/{first.json()['annotationId']}", headers=tutor)
    assert erased.status_code == 200, erased.text
    rubric = {"rubric": [{"criterion": "Method", "points": 3, "maxPoints": 4}]}
    assert client.post(f"{upload}/score", json=rubric, headers=tutor).is_success
    back = client.post(f"{upload}/hand-back", json={"feedback": "Neat"}, headers=tutor)
    assert back.status_code == 200, back.text
    project(centres, reads)

    keys = centres.privacy.keys if centres.privacy else None
    with TestClient(query_app(reads, blobs=blobs, own_resources=False, keys=keys)) as query:
        assert read(query, "/api/academic/tutor/my-day", alpha, "tutor")["paperToMark"] == []
        marked = read(query, upload, alpha, "ann")
        assert marked["status"] == "HANDED_BACK" and marked["feedback"] == "Neat"
        assert [a["mark"]["type"] for a in marked["annotations"]] == ["stroke"]
        ticked = marked["replay"][0]["position"]
        assert [s["action"] for s in marked["replay"]] == ["ANNOTATED", "ANNOTATED", "ERASED"]
        overview = read(query, f"/api/v1/students/{alpha['ann'].user_id}/overview", alpha, "ann")
        (paper,) = overview["paper"]
        assert paper["status"] == "HANDED_BACK" and paper["score"] == 3
        assert overview["xp"]["total"] > 0  # graded on paper like online work

        def png(url: str) -> Image.Image:
            response = query.get(url, headers=alpha.auth("ann"))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/png"
            return Image.open(io.BytesIO(response.content)).convert("RGB")

        def ink(image: Image.Image, x: float, y: float) -> tuple[int, ...]:
            pixel: tuple[int, ...] = image.getpixel((int(x * image.width), int(y * image.height)))  # type: ignore[assignment]
            return pixel

        page = marked["pages"][0]
        now = png(page["markedUrl"])
        red, green, _ = ink(now, 0.5, 0.9)
        assert red > 150 and green < 100  # the red stroke along the bottom
        then = png(f"{page['markedUrl']}?atPosition={ticked}")
        assert ink(then, 0.5, 0.9) != (red, green, _)  # before the stroke
        assert now.size == (page["width"], page["height"])
