"""A person's erasure on the read side (``PersonDataErased``): their person document says so
and names nobody, their contact has no address, their inbox is emptied, a student's paper
uploads lose their files; everything else (attendance, scores, other people) stays; live
(event by event, redelivered) equals a rebuild, and the change notices name what changed. The
projection service deletes her files from the blob store before it commits the erasure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import msgspec
import pytest

from services.projections.service import ProjectionService
from shared import events as ev
from shared.blobs import BlobNotFound, BlobStoreUnavailable
from shared.blobs.filesystem import FilesystemBlobStore, UrlSigner
from shared.events.paper import ScannedPage
from shared.privacy import ERASED
from shared.readmodels.documents import CONTACT, INBOX, PAPER, PERSON, STUDENT
from shared.readmodels.projector import Batch, Change, apply, apply_all
from shared.readmodels.store import ReadStore
from shared.tenancy import Role
from tests.readside import read_store
from tests.support.paper_history import CENTRE, PAGE, Paper, paper_day

VOICE = f"{CENTRE}/{'b' * 64}.ogg"


@pytest.fixture(scope="module")
def day() -> Paper:
    return paper_day()


def erasure_of(day: Paper, name: str) -> tuple[ev.Event, int]:
    """``PersonDataErased`` of the person called ``name``, next in the history."""
    person = day.people[name].user_id
    version = max(e.aggregate_version for e, _ in day.history if e.aggregate_id == person)
    admin = next(a for a in day.people.values() if a.role is Role.CENTER_ADMIN)
    event = ev.PersonDataErased(
        centre_id=CENTRE,
        aggregate_id=person,
        aggregate_version=version + 1,
        occurred_at=day.tick(),
        actor_id=admin.user_id,
        actor_role=admin.role,
        reason="right-to-erasure request 2026-17",
        key_id="0123456789ab",
    )
    position = max(n for _, n in day.history) + 1
    return ev.decode(msgspec.json.encode(event)), position


@pytest.fixture
def erased(tmp_path: Path, day: Paper) -> Iterator[tuple[ReadStore, ReadStore, list[Change]]]:
    """The day projected, then Jane's erasure in a batch of its own: (before, after, changes)."""
    before, after = read_store(tmp_path, "before.sqlite"), read_store(tmp_path, "after.sqlite")
    apply_all(before, day.history)
    apply_all(after, day.history)
    changes = apply_all(after, [erasure_of(day, "Jane Johnson")])
    yield before, after, changes
    before.close()
    after.close()


def rows(store: ReadStore) -> dict[tuple[str, str], Any]:
    """Every document as stored (kind and key: the rest of its row), and the log's rows."""
    dump = store.dump(store.generation())
    docs = {(row[0], row[1]): row[2:] for row in dump["rm_docs"]}
    return {**docs, **{("log", str(i)): row for i, row in enumerate(dump["rm_log"])}}


def test_the_person_reads_erased_and_their_inbox_and_address_are_gone(
    erased: tuple[ReadStore, ReadStore, list[Change]], day: Paper
) -> None:
    before, after, _ = erased
    jane = str(day.people["Jane Johnson"].user_id)
    person = after.get(PERSON, jane)
    assert person is not None
    assert person.doc.name == ERASED and person.doc.erased is True
    assert person.doc.erased_at and person.doc.role is Role.STUDENT
    contact = after.get(CONTACT, jane)
    assert contact is not None and (contact.doc.name, contact.doc.email) == (ERASED, ERASED)
    had = before.get(INBOX, jane)
    assert had is not None and had.doc.items  # told of the paper handed back
    inbox = after.get(INBOX, jane)
    assert inbox is not None and inbox.doc.items == [] and inbox.doc.read_ids == []
    assert inbox.doc.preferences == had.doc.preferences


def test_only_the_persons_own_documents_change_and_counts_stay(
    erased: tuple[ReadStore, ReadStore, list[Change]], day: Paper
) -> None:
    before, after, changes = erased
    jane = str(day.people["Jane Johnson"].user_id)
    uploads = {str(day.marked), str(day.typed_in)}
    changed = {(c.kind, c.key) for c in changes}
    assert changed == {
        ("person", jane),
        ("contact", jane),
        ("inbox", jane),
        *(("paper", upload) for upload in uploads),
    }
    old, new = rows(before), rows(after)
    assert {k: v for k, v in old.items() if k not in changed} == {
        k: v for k, v in new.items() if k not in changed
    }
    student = after.get(STUDENT, jane)
    assert student is not None and student.doc.paper  # her work, scores and attendance stay
    for upload in uploads:
        paper = after.get(PAPER, upload)
        assert paper is not None and paper.doc.files_erased_at
        was = before.get(PAPER, upload)
        assert was is not None and paper.doc.score == was.doc.score
    lost = after.get(PAPER, str(day.lost))  # Alex's upload, not hers
    assert lost is not None and not lost.doc.files_erased_at
    # Everyone else is as they were: Robert (her parent) keeps his name and his inbox.
    robert = str(day.people["Robert Johnson"].user_id)
    assert old[("person", robert)] == new[("person", robert)]


def test_the_batch_hands_over_her_uploads_files_once(tmp_path: Path, day: Paper) -> None:
    store = read_store(tmp_path)
    apply_all(store, day.history)
    erasure = erasure_of(day, "Jane Johnson")
    with store.transaction() as tx:
        batch = Batch(tx)
        assert apply(batch, *erasure)
        assert not apply(batch, *erasure)  # delivered twice in one batch
        batch.flush()
    assert sorted(batch.erased_blobs) == sorted({PAGE.blob_key, VOICE})
    with store.transaction() as tx:  # redelivered later: applied before, nothing to delete
        again = Batch(tx)
        assert not apply(again, *erasure)
        again.flush()
    assert again.erased_blobs == []
    store.close()


def test_live_one_by_one_and_redelivered_equals_a_rebuild(tmp_path: Path, day: Paper) -> None:
    history = [*day.history, erasure_of(day, "Jane Johnson"), erasure_of(day, "Alex Thompson")]
    rebuilt = read_store(tmp_path, "rebuilt.sqlite")
    apply_all(rebuilt, history)
    live = read_store(tmp_path, "live.sqlite")
    for item in history:
        apply_all(live, [item, item])
    assert live.dump(live.generation()) == rebuilt.dump(rebuilt.generation())
    live.close()
    rebuilt.close()


class FlakyBlobs(FilesystemBlobStore):
    """A folder of files that can be made unreachable."""

    down = False

    def delete(self, key: str) -> bool:
        if self.down:
            raise BlobStoreUnavailable("the blob folder cannot be written")
        return super().delete(key)


def test_the_projection_service_deletes_her_files_before_it_commits(tmp_path: Path) -> None:
    blobs = FlakyBlobs(tmp_path / "blobs", UrlSigner(b"k" * 32))
    photo = blobs.put(CENTRE, b"a photo of Jane's worked answers", "image/jpeg")
    kept = blobs.put(CENTRE, b"a worksheet of another centre's day", "image/png")
    page = ScannedPage(blob_key=photo, content_type="image/jpeg", width=1, height=1, size=1)
    day = paper_day(page)
    blobs.path_of(VOICE).parent.mkdir(parents=True, exist_ok=True)
    blobs.path_of(VOICE).write_bytes(b"a tutor talking about Jane's work")
    store = read_store(tmp_path)
    apply_all(store, day.history)
    service = ProjectionService(store, MagicMock(), blobs=blobs)
    erasure = erasure_of(day, "Jane Johnson")
    jane = str(day.people["Jane Johnson"].user_id)

    blobs.down = True  # the store is away: nothing is committed, the batch comes back
    with pytest.raises(BlobStoreUnavailable):
        service._apply([erasure])
    person = store.get(PERSON, jane)
    assert person is not None and not person.doc.erased
    assert blobs.get(photo) and blobs.get(VOICE)

    blobs.down = False
    outcome = service._apply([erasure])
    assert outcome.applied == [0] and not outcome.failed
    for key in (photo, VOICE):
        with pytest.raises(BlobNotFound):
            blobs.get(key)
    assert blobs.get(kept)
    person = store.get(PERSON, jane)
    assert person is not None and person.doc.erased is True
    again = service._apply([erasure])  # redelivered: recognised as applied, nothing changes
    assert again.applied == [0] and again.changes == []
    store.close()
