"""Reading paper work through the query API: an upload with signed page URLs the blob route
serves, the marked page drawn as PNG (now and as it was during the marking), the centre's
uploads by status, a student's paper work, and who may read which."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from PIL import Image

from services.query import answers
from services.query.app import create_app
from shared import events as ev
from shared.blobs import BlobStore
from shared.events.paper import Mark, ScannedPage
from shared.paper.ink import render_marked_page
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from shared.tenancy.tokens import mint
from tests.readside import read_store
from tests.support.paper_history import Paper, paper_day

WIDTH, HEIGHT = 400, 566


def auth(handle: str) -> dict[str, str]:
    person = demo_person(handle)
    token = mint(Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def scan(blobs: BlobStore) -> tuple[ScannedPage, bytes]:
    """A blank white page, stored as a scan would be."""
    out = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), "white").save(out, "JPEG", quality=90)
    data = out.getvalue()
    key = blobs.put(DEMO_CENTRE, data, "image/jpeg")
    page = ScannedPage(
        blob_key=key, content_type="image/jpeg", width=WIDTH, height=HEIGHT, size=len(data)
    )
    return page, data


@pytest.fixture
def day(scan: tuple[ScannedPage, bytes]) -> Paper:
    return paper_day(scan[0])


@pytest.fixture
def drawn() -> list[int]:
    """How many inked marks each page the query API drew had."""
    return []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    """The same answers from the embedded SQLite read store and from PostgreSQL."""
    if request.param == "sqlite":
        store = read_store(tmp_path)
    else:
        env = {"TUTORPULSE_READ_STORE": "postgres", **request.getfixturevalue("pg").env()}
        store = open_read_store(load(ReadStoreSettings, env))
    yield store
    store.close()


@pytest.fixture
def client(
    store: ReadStore, blobs: BlobStore, day: Paper, drawn: list[int]
) -> Iterator[TestClient[Litestar]]:
    apply_all(store, day.history)
    store.advance_watermark(day.history[-1][1])

    def render(page: bytes, marks: Sequence[Mark]) -> bytes:
        drawn.append(len(marks))
        return render_marked_page(page, marks)

    app = create_app(store, blobs=blobs, own_resources=False, render=render)
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient[Litestar], url: str, who: str, status: int = 200) -> Any:
    response = client.get(url, headers=auth(who))
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    return response


def test_an_upload_links_its_pages_by_signed_urls_the_blob_route_serves(
    client: TestClient[Litestar], day: Paper, scan: tuple[ScannedPage, bytes]
) -> None:
    response = get(client, f"/api/v1/paper/uploads/{day.marked}", "jane")
    msgspec.json.decode(response.content, type=answers.PaperUploadAnswer)  # no unknown keys
    data = response.json()["data"]
    assert response.json()["version"] > 0 and data["status"] == "HANDED_BACK"
    assert response.headers["X-Tutorpulse-Watermark"] == str(day.history[-1][1])
    assert data["routing"]["studentName"] == "Jane Johnson"
    assert [a["mark"]["type"] for a in data["annotations"]] == ["stroke", "text"]
    assert data["score"]["score"] == 8 and data["feedback"] == "Good work"
    page = data["pages"][0]
    assert "signature=" in page["url"] and (page["width"], page["height"]) == (WIDTH, HEIGHT)
    image = client.get(page["url"])  # no token: the signature is the permission
    assert image.status_code == 200 and image.content == scan[1]
    assert image.headers["content-type"] == "image/jpeg"
    tampered = page["url"].replace("signature=", "signature=x")
    assert client.get(tampered).status_code == 403


def _png(response: Any) -> Image.Image:
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    return image.convert("RGB")


def _inked(image: Image.Image, x: float, y: float) -> bool:
    """Whether the pixel at fractions ``x``, ``y`` of the page is no longer white."""
    r, g, b = image.getpixel((int(x * WIDTH), int(y * HEIGHT)))  # type: ignore[misc]
    return min(r, g, b) < 200


def test_the_marked_page_replays_the_erased_stamp(client: TestClient[Litestar], day: Paper) -> None:
    url = f"/api/v1/paper/uploads/{day.marked}/pages/0/marked.png"
    response = get(client, url, "jane")
    assert response.headers["X-Tutorpulse-Watermark"] == str(day.history[-1][1])
    now = _png(response)
    assert _inked(now, 0.15, 0.2)  # on the stroke from (0.1, 0.1) to (0.2, 0.3)
    assert not _inked(now, 0.5, 0.5)  # the cross was erased
    stamped = [n for e, n in day.history if isinstance(e, ev.PaperAnnotated)][1]
    then = _png(get(client, f"{url}?atPosition={stamped}", "john"))
    assert _inked(then, 0.5, 0.5) and _inked(then, 0.15, 0.2)
    routed = day.position(ev.PaperRouted, day.marked)
    blank = _png(get(client, f"{url}?atPosition={routed}", "john"))
    assert not _inked(blank, 0.15, 0.2)
    view = get(client, f"/api/v1/paper/uploads/{day.marked}?atPosition={stamped}", "john")
    assert view.json()["data"]["pages"][0]["markedUrl"].endswith(f"?atPosition={stamped}")


def test_who_may_read_which_upload(client: TestClient[Litestar], day: Paper) -> None:
    for who in ("jane", "robert", "john", "sarah"):
        get(client, f"/api/v1/paper/uploads/{day.marked}", who)
    for who in ("alex", "lisa"):
        get(client, f"/api/v1/paper/uploads/{day.marked}", who, 404)
        get(client, f"/api/v1/paper/uploads/{day.marked}/pages/0/marked.png", who, 404)
    get(client, f"/api/v1/paper/uploads/{day.marked}", "emily", 403)
    get(client, f"/api/v1/paper/uploads/{day.lost}", "alex")  # its uploader, not yet routed
    get(client, f"/api/v1/paper/uploads/{day.lost}", "jane", 404)
    get(client, f"/api/v1/paper/uploads/{day.marked}/pages/2/marked.png", "jane", 404)
    get(client, "/api/v1/paper/uploads", "jane", 403)
    get(client, f"/api/v1/students/{demo_person('jane').id}/paper", "lisa", 404)


def test_bad_moments_and_cursors_are_refused_naming_them(
    client: TestClient[Litestar], day: Paper
) -> None:
    base = f"/api/v1/paper/uploads/{day.marked}"
    naive = get(client, f"{base}?at=2026-01-01T10:00:00", "john", 422)
    assert naive.json()["field"] == "at"
    future = get(client, f"{base}/pages/0/marked.png?at=2999-01-01T00:00:00Z", "john", 422)
    assert future.json()["field"] == "at"
    assert get(client, f"{base}?atPosition=-1", "john", 422).json()["field"] == "atPosition"
    get(client, f"{base}/pages/-1/marked.png", "john", 422)
    cursor = get(client, "/api/v1/paper/uploads?cursor=nonsense", "sarah", 422)
    assert cursor.json()["field"] == "cursor"
    assert get(client, "/api/v1/paper/uploads?status=LOST", "sarah", 422).json()["field"] == (
        "status"
    )
    before = get(client, f"{base}?at=2000-01-01T00:00:00Z", "john", 404)
    assert "did not exist yet" in before.json()["detail"]


def test_staff_list_uploads_by_status_and_a_family_sees_the_student_paper_work(
    client: TestClient[Litestar], day: Paper
) -> None:
    response = get(client, "/api/v1/paper/uploads?status=UNROUTABLE", "sarah")
    msgspec.json.decode(response.content, type=answers.PaperUploadListAnswer)
    rows = response.json()["data"]["uploads"]
    assert [r["uploadId"] for r in rows] == [str(day.lost)]
    assert rows[0]["unroutableReason"] == "no sheet code found"
    assert rows[0]["uploadedByName"] == "Alex Thompson"
    first = get(client, "/api/v1/paper/uploads?limit=2", "john").json()["data"]
    second = get(client, f"/api/v1/paper/uploads?limit=2&cursor={first['next']}", "john")
    assert (
        first["total"] == 3 and len(first["uploads"]) + len(second.json()["data"]["uploads"]) == 3
    )
    jane = demo_person("jane").id
    work = get(client, f"/api/v1/students/{jane}/paper", "robert")
    msgspec.json.decode(work.content, type=answers.StudentPaperAnswer)
    uploads = {u["uploadId"]: u for u in work.json()["data"]["uploads"]}
    assert uploads[str(day.marked)]["status"] == "HANDED_BACK"
    assert uploads[str(day.typed_in)]["status"] == "AWAITING_MARKING"
    assert uploads[str(day.typed_in)]["teacherName"] == "John Teacher"


def test_my_day_and_the_control_center_answer_their_schemas_with_paper(
    client: TestClient[Litestar], day: Paper
) -> None:
    my_day = get(client, "/api/academic/tutor/my-day", "john")
    msgspec.json.decode(my_day.content, type=answers.MyDayAnswer)
    data = my_day.json()["data"]
    assert [p["uploadId"] for p in data["paperToMark"]] == [str(day.typed_in)]
    assert data["stats"]["paperToMark"] == 1
    jane = demo_person("jane").id
    overview = get(client, f"/api/v1/students/{jane}/overview", "robert")
    msgspec.json.decode(overview.content, type=answers.StudentOverviewAnswer)
    assert len(overview.json()["data"]["paper"]) == 2
    centre = get(client, f"/api/v1/sessions/{day.session_id}/control-center", "john")
    msgspec.json.decode(centre.content, type=answers.ControlCenterAnswer)
    assert centre.json()["data"]["paperHandedIn"] == 1


def test_every_paper_route_is_in_the_openapi_document(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    operations = {
        op["operationId"]: op for path in schema["paths"].values() for op in path.values()
    }
    for name in ("paperUploads", "paperUpload", "markedPaperPage", "studentPaperWork"):
        responses = operations[name]["responses"]
        assert {"200", "401", "403", "422", "503"} <= set(responses), name
        assert ("404" in responses) is (name != "paperUploads"), name
    png = operations["markedPaperPage"]["responses"]["200"]["content"]
    assert list(png) == ["image/png"]
    upload = operations["paperUpload"]["responses"]["200"]["content"]["application/json"]
    assert upload["examples"] or upload.get("example")


def test_a_marked_page_is_drawn_once_per_ink_and_revalidated_by_its_tag(
    client: TestClient[Litestar], day: Paper, drawn: list[int]
) -> None:
    url = f"/api/v1/paper/uploads/{day.marked}/pages/0/marked.png"
    first = get(client, url, "jane")
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = get(client, url, "robert")  # the same page and ink, for another reader
    assert again.content == first.content and again.headers["etag"] == tag
    unchanged = client.get(url, headers={**auth("jane"), "If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    stamped = [n for e, n in day.history if isinstance(e, ev.PaperAnnotated)][1]
    then = get(client, f"{url}?atPosition={stamped}", "jane")
    assert then.headers["etag"] != tag
    other = client.get(
        f"{url}?atPosition={stamped}", headers={**auth("jane"), "If-None-Match": tag}
    )
    assert other.status_code == 200
    assert drawn == [1, 2]  # now (the stroke), then (the stroke and the stamp)
