"""Paper work through the command API: print a session's worksheets, hand in a photo of one,
see it filed against the right work by itself, mark it in ink and hand it back graded."""

from __future__ import annotations

import io
import wave
from typing import Any
from uuid import UUID

import pypdfium2  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.testing import TestClient
from PIL import Image, ImageFilter

from services.command.application import TutoringCentres
from services.command.domain.seat import seat_id
from shared import events
from shared.events import (
    ExerciseGraded,
    ExerciseSubmitted,
    PaperHandedBack,
    PaperRouted,
    PaperUnroutable,
    WorksheetPrinted,
)
from shared.tenancy import Actor, Role
from tests.api.helpers import is_problem, live_session
from tests.api.test_work import ESSAY, FRACTIONS, publish
from tests.builders import Centre
from tests.support.history import history


def pages_of(pdf: bytes, scale: float = 2.0) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [page.render(scale=scale).to_pil().convert("RGB") for page in document]
    finally:
        document.close()


def photo(page: Image.Image, *, degrees: float = 0) -> bytes:
    """A phone photo of a printed page: turned a little on a desk, soft, JPEG."""
    desk = page.rotate(degrees, expand=True, fillcolor=(90, 80, 70))
    out = io.BytesIO()
    desk.filter(ImageFilter.GaussianBlur(0.8)).save(out, "JPEG", quality=80)
    return out.getvalue()


def wav(seconds: int) -> bytes:
    """A recording of silence, as small as a WAV file can be (8 kHz, 8 bits, mono)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(1)
        recording.setframerate(8000)
        recording.writeframes(b"\x80" * 8000 * seconds)
    return out.getvalue()


def set_work(client: TestClient[Litestar], centre: Centre, *students: str) -> tuple[str, Any]:
    session = live_session(client, centre, *students)
    exercise = publish(client, centre, ESSAY)
    response = client.post(
        f"/api/v1/sessions/{session}/work",
        json={"exerciseId": exercise},
        headers=centre.auth("tutor"),
    )
    assert response.status_code == 201, response.text
    return session, response.json()["work"]


def print_sheets(client: TestClient[Litestar], centre: Centre, session: str) -> bytes:
    response = client.post(f"/api/v1/sessions/{session}/worksheets", headers=centre.auth("tutor"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def hand_in(
    client: TestClient[Litestar], centre: Centre, who: str, *files: bytes
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/paper/uploads",
        files=[("files", (f"scan{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)],
        headers=centre.auth(who),
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def events_of(centres: TutoringCentres, aggregate_id: UUID | str) -> list[Any]:
    """An aggregate's events, their personal texts opened."""
    return history(centres, UUID(str(aggregate_id)))


def printed_code(centres: TutoringCentres, work_id: str) -> str:
    for notification in centres.recorder.select_notifications(1, 100_000):
        event = events.decode(notification.state)
        if isinstance(event, WorksheetPrinted) and str(event.work_id) == work_id:
            return event.code
    raise AssertionError("no worksheet was printed for the work")


def test_a_photographed_worksheet_files_itself_and_is_marked_in_ink(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    session, work = set_work(client, alpha, "ann", "ben")
    by_student = {w["studentId"]: w["workId"] for w in work}
    sheets = pages_of(print_sheets(client, alpha, session))
    assert len(sheets) == 2  # one sheet each, the session in one PDF

    # Ann photographs a sheet, a little crooked. Whichever it is, it files itself as hers
    # only if it is hers: Ben's sheet from Ann is not filed against anyone.
    answers = [hand_in(client, alpha, "ann", photo(sheet, degrees=7)) for sheet in sheets]
    routed = [a for a in answers if a["status"] == "ROUTED"]
    refused = [a for a in answers if a["status"] == "UNROUTABLE"]
    assert len(routed) == 1 and len(refused) == 1, answers
    mine = routed[0]
    assert mine["studentId"] == str(alpha["ann"].user_id)
    assert mine["workId"] == by_student[str(alpha["ann"].user_id)]
    assert refused[0]["reason"] == "the worksheet is someone else's"

    # The work is handed in on paper and waits for the tutor.
    seat = seat_id(UUID(session), alpha["ann"].user_id)
    submitted = [e for e in events_of(centres, seat) if isinstance(e, ExerciseSubmitted)]
    assert [(e.status, e.paper_upload_id) for e in submitted] == [
        ("SUBMITTED", UUID(mine["uploadId"]))
    ]
    routing = [e for e in events_of(centres, mine["uploadId"]) if isinstance(e, PaperRouted)]
    assert routing[0].method == "QR_CODE" and routing[0].teacher_id == alpha["tutor"].user_id

    upload = f"/api/v1/paper/uploads/{mine['uploadId']}"
    tutor = alpha.auth("tutor")
    tick = {"page": 0, "mark": {"type": "stamp", "kind": "TICK", "at": [0.5, 0.4]}}
    is_problem(client.post(f"{upload}/annotations", json=tick, headers=alpha.auth("ann")), 403)
    is_problem(
        client.post(f"{upload}/annotations", json=tick, headers=alpha.auth("other_tutor")), 403
    )
    first = client.post(f"{upload}/annotations", json=tick, headers=alpha.auth("tutor"))
    assert first.status_code == 201, first.text
    stroke = {
        "page": 0,
        "mark": {"type": "stroke", "points": [[0.1, 0.1], [0.2, 0.15], [0.3, 0.1]]},
    }
    assert client.post(f"{upload}/annotations", json=stroke, headers=alpha.auth("tutor")).is_success
    erased = client.delete(
        f"{upload}/annotations/{first.json()['annotationId']}", headers=alpha.auth("tutor")
    )
    assert erased.status_code == 200, erased.text
    off_page = {**tick, "page": 3}
    assert (
        is_problem(
            client.post(f"{upload}/annotations", json=off_page, headers=alpha.auth("tutor")), 422
        )["field"]
        == "page"
    )

    # A spoken comment: its length is read from the recording, and three minutes is the most.
    voice = f"{upload}/voice-comment"
    said = client.post(voice, files={"file": ("c.wav", wav(10), "audio/wav")}, headers=tutor)
    assert said.status_code == 200, said.text
    too_long = client.post(voice, files={"file": ("c.wav", wav(181), "audio/wav")}, headers=tutor)
    assert is_problem(too_long, 422)["field"] == "file"
    not_audio = client.post(voice, files={"file": ("c.wav", b"hello", "audio/wav")}, headers=tutor)
    is_problem(not_audio, 415)
    ann = alpha.auth("ann")
    is_problem(client.post(voice, files={"file": ("c.wav", wav(1), "audio/wav")}, headers=ann), 403)

    # Not before it is scored; then handed back, graded on the work's own scale (4 points).
    is_problem(client.post(f"{upload}/hand-back", json={}, headers=alpha.auth("tutor")), 409)
    rubric = {
        "rubric": [
            {"criterion": "Method", "points": 3, "maxPoints": 4},
            {"criterion": "Answer", "points": 4, "maxPoints": 4},
        ]
    }
    scored = client.post(f"{upload}/score", json=rubric, headers=alpha.auth("tutor"))
    assert scored.status_code == 200, scored.text
    assert (scored.json()["score"], scored.json()["maxScore"]) == (3.5, 4)
    back = client.post(
        f"{upload}/hand-back", json={"feedback": "Well set out"}, headers=alpha.auth("tutor")
    )
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "HANDED_BACK"
    graded = [e for e in events_of(centres, seat) if isinstance(e, ExerciseGraded)]
    assert [(e.score, e.max_score, e.xp_awarded > 0) for e in graded] == [(3.5, 4, True)]
    handed = [e for e in events_of(centres, mine["uploadId"]) if isinstance(e, PaperHandedBack)]
    assert handed[0].feedback == "Well set out"
    is_problem(client.post(f"{upload}/annotations", json=tick, headers=alpha.auth("tutor")), 409)


def test_an_unreadable_scan_is_filed_by_the_short_code_a_person_types(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    session, work = set_work(client, alpha, "ann")
    (sheet,) = pages_of(print_sheets(client, alpha, session))
    # The QR code is torn off: only the text of the page is left.
    torn = sheet.crop((0, sheet.height // 3, sheet.width, sheet.height))
    answer = hand_in(client, alpha, "ann", photo(torn))
    assert answer["status"] == "UNROUTABLE"
    assert answer["reason"] == "no page has a readable worksheet code"
    (unroutable,) = [
        e for e in events_of(centres, answer["uploadId"]) if isinstance(e, PaperUnroutable)
    ]
    assert unroutable.actor_id == alpha["ann"].user_id

    sheets = client.post(f"/api/v1/sessions/{session}/worksheets", headers=alpha.auth("tutor"))
    assert sheets.status_code == 200
    code = printed_code(centres, work[0]["workId"])
    typed = "-".join(code[i : i + 4] for i in range(0, 16, 4)).lower()
    route = f"/api/v1/paper/uploads/{answer['uploadId']}/route"
    bad = client.post(route, json={"shortCode": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}, headers=alpha.auth("ann"))
    assert is_problem(bad, 422)["field"] == "shortCode"
    is_problem(client.post(route, json={"shortCode": typed}, headers=alpha.auth("ben")), 403)
    filed = client.post(route, json={"shortCode": typed}, headers=alpha.auth("ann"))
    assert filed.status_code == 200, filed.text
    assert (filed.json()["status"], filed.json()["workId"]) == ("ROUTED", work[0]["workId"])
    is_problem(client.post(route, json={"shortCode": typed}, headers=alpha.auth("ann")), 409)


def test_sheets_and_scans_stay_in_their_centre(
    client: TestClient[Litestar], alpha: Centre, beta: Centre
) -> None:
    session, _ = set_work(client, alpha, "ann")
    (sheet,) = pages_of(print_sheets(client, alpha, session))
    # Beta's student hands in Alpha's sheet: Beta has no such worksheet.
    answer = hand_in(client, beta, "ann", photo(sheet))
    assert answer["status"] == "UNROUTABLE"
    assert answer["reason"] == "its code is not one of this centre's worksheets"
    is_problem(
        client.post(f"/api/v1/sessions/{session}/worksheets", headers=beta.auth("tutor")), 404
    )


def test_files_that_are_not_scans_are_refused_clearly(
    client: TestClient[Litestar], alpha: Centre
) -> None:
    text = client.post(
        "/api/v1/paper/uploads",
        files=[("files", ("notes.txt", b"not a picture", "image/jpeg"))],
        headers=alpha.auth("ann"),
    )
    assert is_problem(text, 415)["field"] == "files[0]"
    is_problem(
        client.post(
            "/api/v1/paper/uploads",
            files=[("files", ("a.jpg", b"x", "image/jpeg"))],
            headers=alpha.auth("finance"),
        ),
        403,
    )
    empty_session = live_session(client, alpha, "ben")
    is_problem(
        client.post(f"/api/v1/sessions/{empty_session}/worksheets", headers=alpha.auth("tutor")),
        409,
    )
    session, _ = set_work(client, alpha, "cal")
    is_problem(
        client.post(f"/api/v1/sessions/{session}/worksheets", headers=alpha.auth("ann")), 403
    )


def test_auto_marked_work_handed_in_on_paper_waits_for_the_tutor(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    session = live_session(client, alpha, "ann")
    exercise = publish(client, alpha, FRACTIONS)
    client.post(
        f"/api/v1/sessions/{session}/work",
        json={"exerciseId": exercise},
        headers=alpha.auth("tutor"),
    )
    (sheet,) = pages_of(print_sheets(client, alpha, session))
    answer = hand_in(client, alpha, "tutor", photo(sheet, degrees=-90))
    assert answer["status"] == "ROUTED", answer
    seat = seat_id(UUID(session), alpha["ann"].user_id)
    (submitted,) = [e for e in events_of(centres, seat) if isinstance(e, ExerciseSubmitted)]
    assert (submitted.status, submitted.score, submitted.actor_id) == (
        "SUBMITTED",
        None,
        alpha["tutor"].user_id,
    )


def test_an_upload_sent_again_with_its_key_is_filed_once(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    session, _ = set_work(client, alpha, "ann")
    (sheet,) = pages_of(print_sheets(client, alpha, session))
    scan = photo(sheet, degrees=3)

    def send(key: str) -> Any:
        return client.post(
            "/api/v1/paper/uploads",
            files=[("files", ("scan.jpg", scan, "image/jpeg"))],
            headers={**alpha.auth("ann"), "Idempotency-Key": key},
        )

    first, again = send("scan-1"), send("scan-1")
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["uploadId"] == first.json()["uploadId"]
    uploaded = [
        n for n in centres.recorder.select_notifications(1, 100_000) if n.topic == "PaperUploaded"
    ]
    assert len(uploaded) == 1
    # The same key with other files is another request: refused, not replayed.
    other = client.post(
        "/api/v1/paper/uploads",
        files=[("files", ("scan.jpg", photo(sheet, degrees=-4), "image/jpeg"))],
        headers={**alpha.auth("ann"), "Idempotency-Key": "scan-1"},
    )
    is_problem(other, 422)


def test_a_parent_hands_in_their_childs_sheet_and_no_one_elses(
    client: TestClient[Litestar], centres: TutoringCentres, alpha: Centre
) -> None:
    registered = client.post(
        "/api/v1/people",
        json={
            "name": "Gus",
            "email": "gus@alpha.example",
            "role": "STUDENT",
            "guardianId": str(alpha["parent"].user_id),
        },
        headers=alpha.auth("admin"),
    )
    assert registered.status_code == 201, registered.text
    gus = registered.json()["personId"]
    alpha.people["gus"] = Actor(user_id=UUID(gus), role=Role.STUDENT, centre_id="alpha")
    session, work = set_work(client, alpha, "gus", "ann")
    sheets = pages_of(print_sheets(client, alpha, session))
    answers = [hand_in(client, alpha, "parent", photo(sheet)) for sheet in sheets]
    by_status = {a["status"]: a for a in answers}
    assert set(by_status) == {"ROUTED", "UNROUTABLE"}, answers
    assert by_status["ROUTED"]["studentId"] == gus
    assert by_status["UNROUTABLE"]["reason"] == "the worksheet is someone else's"
    # The parent may not file Ann's sheet by its typed code either; staff may.
    ann_work = next(w["workId"] for w in work if w["studentId"] == str(alpha["ann"].user_id))
    route = f"/api/v1/paper/uploads/{by_status['UNROUTABLE']['uploadId']}/route"
    code = {"shortCode": printed_code(centres, ann_work)}
    is_problem(client.post(route, json=code, headers=alpha.auth("parent")), 403)
    filed = client.post(route, json=code, headers=alpha.auth("supervisor"))
    assert filed.status_code == 200, filed.text
    assert filed.json()["studentId"] == str(alpha["ann"].user_id)
