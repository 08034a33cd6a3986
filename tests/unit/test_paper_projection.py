"""Paper work on the read side: the upload's document, the marking queue, the Control Center's
"paper handed in", who sees which upload, and the marking replayed as it was at any moment.

The history is the demo centre's day followed by paper work on it: a student's exercise
scanned, routed by its QR code, marked in ink (one stamp erased), scored and handed back; a
parent's scan of homework that could not be routed until its code was typed in; and a scan
nobody could route.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from shared import events as ev
from shared.readmodels import access
from shared.readmodels.documents import PAPER, TUTOR, PaperStatus
from shared.readmodels.projector import Batch, OutOfOrder, apply, apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.times import iso
from shared.readmodels.views.paper import AsOf
from shared.tenancy import Actor, Forbidden, Role
from tests.readside import read_store
from tests.support.paper_history import CENTRE, PAGE, Paper, paper_day


def urls(key: str) -> str:
    return f"https://blobs.example/{key}?signature=x"


@pytest.fixture(scope="module")
def day() -> Paper:
    return paper_day()


@pytest.fixture
def store(tmp_path: Path, day: Paper) -> Iterator[ReadStore]:
    store = read_store(tmp_path)
    apply_all(store, day.history)
    yield store
    store.close()


def test_one_by_one_redelivered_and_scrambled_equals_a_rebuild(tmp_path: Path, day: Paper) -> None:
    rebuilt = read_store(tmp_path, "rebuilt.sqlite")
    apply_all(rebuilt, day.history)
    expected = rebuilt.dump(rebuilt.generation())
    rebuilt.close()

    live = read_store(tmp_path, "live.sqlite")
    for item in day.history:
        apply_all(live, [item, item])  # each delivered twice
    apply_all(live, day.history)  # and the whole history again after a restart
    assert live.dump(live.generation()) == expected
    live.close()

    scrambled = read_store(tmp_path, "scrambled.sqlite")
    pending = list(range(len(day.history)))
    random.Random(11).shuffle(pending)
    while pending:
        waiting: list[int] = []
        with scrambled.transaction() as tx:
            batch = Batch(tx)
            for index in pending:
                try:
                    apply(batch, *day.history[index])
                except OutOfOrder:
                    waiting.append(index)
            batch.flush()
        assert len(waiting) < len(pending)
        pending = waiting
    assert scrambled.dump(scrambled.generation()) == expected
    scrambled.close()


def test_the_upload_keeps_its_pages_routing_ink_in_order_and_hand_back(
    store: ReadStore, day: Paper
) -> None:
    stored = store.get(PAPER, str(day.marked))
    assert stored is not None
    paper = stored.doc
    assert paper.status is PaperStatus.HANDED_BACK
    assert paper.uploaded_by == str(day.people["Jane Johnson"].user_id)
    assert [p.width for p in paper.pages] == [1240, 1240]
    assert paper.routing is not None and paper.routing.work_id == str(day.work_id)
    assert [a.page for a in paper.annotations] == [0, 0, 1]
    positions = [a.position for a in paper.annotations]
    assert positions == sorted(positions) and positions[0] > day.position(ev.PaperRouted)
    erased = [a for a in paper.annotations if a.erased_at]
    assert [a.annotation_id for a in erased] == [str(day.stamp)]
    assert paper.feedback == "Good work" and paper.score == 8
    assert paper.scores[-1].rubric[0].criterion == "Method"
    typed = store.get(PAPER, str(day.typed_in))
    assert typed is not None and typed.doc.status is PaperStatus.AWAITING_MARKING
    assert typed.doc.unroutable_reason == "no sheet code found"
    lost = store.get(PAPER, str(day.lost))
    assert lost is not None and lost.doc.status is PaperStatus.UNROUTABLE


def test_the_view_signs_page_urls_when_read_and_hides_the_erased_stamp(
    store: ReadStore, day: Paper
) -> None:
    jane = day.people["Jane Johnson"]
    view = access.paper_upload(store, jane, day.marked, urls).data
    assert [p["url"] for p in view["pages"]] == [urls(PAGE.blob_key)] * 2
    assert view["pages"][1]["markedUrl"].endswith(f"/{day.marked}/pages/1/marked.png")
    assert [a["mark"]["type"] for a in view["annotations"]] == ["stroke", "text"]
    assert [s["action"] for s in view["replay"]] == ["ANNOTATED"] * 3 + ["ERASED"]
    assert view["voiceComment"]["seconds"] == 42.5
    assert view["score"]["score"] == 8 and view["feedback"] == "Good work"
    stored = store.get(PAPER, str(day.marked))
    assert stored is not None and "url" not in str(stored.doc)  # never kept in the document


def test_the_marking_replays_as_it_was_at_a_time_or_a_position(
    store: ReadStore, day: Paper
) -> None:
    tutor = Actor(user_id=day.tutor_id or uuid4(), role=Role.TEACHER, centre_id=CENTRE)
    annotated = [n for e, n in day.history if isinstance(e, ev.PaperAnnotated)]
    two = access.paper_upload(store, tutor, day.marked, urls, AsOf(position=annotated[1])).data
    assert [a["mark"]["type"] for a in two["annotations"]] == ["stroke", "stamp"]
    assert two["status"] == "MARKING" and two["score"] is None and two["handedBackAt"] is None
    assert two["pages"][0]["markedUrl"].endswith(f"marked.png?atPosition={annotated[1]}")
    erased = day.position(ev.PaperAnnotationErased)
    when = next(e.occurred_at for e, n in day.history if n == erased)
    before = access.paper_upload(
        store, tutor, day.marked, urls, AsOf(at=iso(when - timedelta(microseconds=1)))
    ).data
    assert len(before["annotations"]) == 3  # the stamp not erased yet
    after = access.paper_upload(store, tutor, day.marked, urls, AsOf(at=iso(when))).data
    assert len(after["annotations"]) == 2
    routed = day.position(ev.PaperRouted, day.marked)
    first = access.paper_upload(store, tutor, day.marked, urls, AsOf(position=routed)).data
    assert first["status"] == "AWAITING_MARKING" and first["annotations"] == []
    with pytest.raises(access.NotVisible):
        access.paper_upload(store, tutor, day.marked, urls, AsOf(position=routed - 2))
    page0 = access.marked_page(store, tutor, day.marked, 0, AsOf(position=annotated[1]))
    assert [type(m).__name__ for m in page0.marks] == ["Stroke", "Stamp"]
    assert [type(m).__name__ for m in access.marked_page(store, tutor, day.marked, 0).marks] == [
        "Stroke"
    ]
    with pytest.raises(access.NotVisible):
        access.marked_page(store, tutor, day.marked, 2)


def test_who_sees_which_upload(store: ReadStore, day: Paper) -> None:
    p = day.people
    jane, robert, alex = p["Jane Johnson"], p["Robert Johnson"], p["Alex Thompson"]
    lisa, michael = p["Lisa Thompson"], p["Michael Lee"]
    for who in (jane, robert, p["Sarah Johnson"], p["John Teacher"], p["Maria Garcia"]):
        access.paper_upload(store, who, day.marked, urls)
    for who in (alex, lisa, michael):
        with pytest.raises(access.NotVisible):
            access.paper_upload(store, who, day.marked, urls)
    # Not routed: staff and its uploader only.
    access.paper_upload(store, alex, day.lost, urls)
    for who in (lisa, jane, robert):
        with pytest.raises(access.NotVisible):
            access.paper_upload(store, who, day.lost, urls)
    with pytest.raises(Forbidden):
        access.paper_upload(store, p["Emily Chen"], day.marked, urls)
    other_centre = Actor(user_id=jane.user_id, role=Role.CENTER_ADMIN, centre_id="online-campus")
    with pytest.raises(access.NotVisible):
        access.paper_upload(store, other_centre, day.marked, urls)
    # Routed by its typed-in code: its uploader (a parent) sees it as Jane's parent.
    access.paper_upload(store, robert, day.typed_in, urls)
    student_view = access.paper_upload(store, alex, day.lost, urls).data
    assert student_view["unroutableReason"] is None  # staff see why
    staff_view = access.paper_upload(store, p["Sarah Johnson"], day.lost, urls).data
    assert staff_view["unroutableReason"] == "no sheet code found"


def test_staff_list_the_centre_uploads_by_status_and_students_their_paper_work(
    store: ReadStore, day: Paper
) -> None:
    p = day.people
    admin = p["Sarah Johnson"]
    unroutable = access.paper_uploads(store, admin, PaperStatus.UNROUTABLE).data
    assert [u["uploadId"] for u in unroutable["uploads"]] == [str(day.lost)]
    everything = access.paper_uploads(store, admin, None, limit=2).data
    assert everything["total"] == 3 and everything["next"]
    at, upload = everything["next"].split("|")
    rest = access.paper_uploads(store, admin, None, limit=2, after=(at, upload)).data
    seen = [u["uploadId"] for u in everything["uploads"] + rest["uploads"]]
    assert sorted(seen) == sorted(map(str, (day.marked, day.typed_in, day.lost)))
    assert rest["next"] is None
    for who in (p["Jane Johnson"], p["Robert Johnson"]):
        with pytest.raises(Forbidden):
            access.paper_uploads(store, who, None)
    mine = access.student_paper(store, p["Robert Johnson"], p["Jane Johnson"].user_id).data
    rows = {r["uploadId"]: r for r in mine["uploads"]}
    assert set(rows) == {str(day.marked), str(day.typed_in)}
    assert rows[str(day.marked)]["score"] == 8 and rows[str(day.typed_in)]["score"] is None
    with pytest.raises(access.NotVisible):
        access.student_paper(store, p["Alex Thompson"], p["Jane Johnson"].user_id)


def test_students_and_parents_see_the_marking_once_it_is_handed_back(
    tmp_path: Path, day: Paper
) -> None:
    store = read_store(tmp_path)
    handed_back = day.position(ev.PaperHandedBack)
    apply_all(store, [(e, n) for e, n in day.history if n < handed_back])
    jane = day.people["Jane Johnson"]
    view = access.paper_upload(store, jane, day.marked, urls).data
    assert view["status"] == "MARKING"
    assert view["annotations"] == [] and view["score"] is None and view["voiceComment"] is None
    assert access.marked_page(store, jane, day.marked, 0).marks == []
    staff = access.paper_upload(store, day.people["John Teacher"], day.marked, urls).data
    assert len(staff["annotations"]) == 2 and staff["score"]["score"] == 8
    store.close()


def test_the_marking_queue_lists_paper_until_it_is_handed_back(tmp_path: Path, day: Paper) -> None:
    store = read_store(tmp_path)
    handed_back = day.position(ev.PaperHandedBack)
    apply_all(store, [(e, n) for e, n in day.history if n < handed_back])
    tutor = Actor(user_id=day.tutor_id or uuid4(), role=Role.TEACHER, centre_id=CENTRE)
    now = datetime.now(UTC)
    before = access.my_day(store, tutor, None, now).data
    queued = {p["uploadId"]: p for p in before["paperToMark"]}
    assert str(day.marked) in queued and queued[str(day.marked)]["status"] == "MARKING"
    assert queued[str(day.marked)]["studentName"] == "Jane Johnson"
    assert before["stats"]["paperToMark"] == len(queued)
    to_grade = {w.get("workId") or w.get("homeworkId"): w for w in before["toGrade"]}
    assert to_grade[str(day.work_id)]["paperUploadId"] == str(day.marked)
    apply_all(store, [(e, n) for e, n in day.history if n >= handed_back])
    after = access.my_day(store, tutor, None, now).data
    assert str(day.marked) not in {p["uploadId"] for p in after["paperToMark"]}
    assert str(day.work_id) not in {w.get("workId") for w in after["toGrade"]}
    stored = store.get(TUTOR, str(day.tutor_id))
    assert stored is not None and str(day.marked) not in (stored.doc.paper or {})
    store.close()


def test_the_control_center_tile_shows_paper_handed_in(store: ReadStore, day: Paper) -> None:
    assert day.session_id is not None
    admin = day.people["Sarah Johnson"]
    view = access.control_center(store, admin, day.session_id, datetime.now(UTC)).data
    row = next(
        s for s in view["students"] if s["studentId"] == str(day.people["Jane Johnson"].user_id)
    )
    assert row["paper"]["handedIn"] == 1
    assert row["paper"]["lastUploadId"] == str(day.marked)
    assert row["paper"]["lastWorkId"] == str(day.work_id)
    assert view["paperHandedIn"] == 1
    others = [s for s in view["students"] if s["studentId"] != row["studentId"]]
    assert all(s["paper"]["handedIn"] == 0 for s in others)
    # The replayed Control Center (from the session's log) shows it too.
    past = access.control_center_at(
        store, admin, day.session_id, datetime.now(UTC) + timedelta(hours=1)
    )
    replayed = next(s for s in past.data["students"] if s["studentId"] == row["studentId"])
    assert replayed["paper"]["lastUploadId"] == str(day.marked)


def test_work_handed_in_on_paper_earns_its_xp_like_online_work(
    store: ReadStore, day: Paper
) -> None:
    jane = day.people["Jane Johnson"]
    overview = access.student_overview(store, jane, jane.user_id, datetime.now(UTC)).data
    work = next(w for w in overview["exercises"]["recent"] if w["workId"] == str(day.work_id))
    assert work["paperUploadId"] == str(day.marked) and work["xpAwarded"] == 30
    assert work["status"] == "GRADED" and work["score"] == 8
    assert overview["xp"]["total"] >= 30
    homework = next(h for h in overview["homework"] if h["homeworkId"] == str(day.homework_id))
    assert homework["paperUploadId"] == str(day.typed_in) and homework["status"] == "SUBMITTED"
    paper = {p["uploadId"]: p for p in overview["paper"]}
    assert set(paper) == {str(day.marked), str(day.typed_in)}
    assert paper[str(day.marked)]["score"] == 8 and paper[str(day.typed_in)]["score"] is None
