"""What a person's erasure (``PersonDataErased``) does to the read models, at once.

Their texts are sealed with their key in every document already, so the key's destruction
makes them read ``"[erased]"`` wherever they are opened. The projection makes the erasure
visible without a key too, and removes what is about them alone:

- their ``person`` document: ``erased: true`` and ``erasedAt``, the name the literal
  ``"[erased]"`` (views and the live gateway's change notices see it without opening anything);
- their ``contact``: name and e-mail address ``"[erased]"`` (the notifier has nowhere to send);
- their ``inbox``: its notifications removed (their preferences stay: they are not personal);
- a student's paper uploads: each marked ``filesErasedAt``, and the keys of its files (page
  photos, voice comments) handed to the batch (:meth:`Batch.erase_blobs`): the projection
  service deletes them from the blob store before it commits the batch (deleting a file that is
  gone already is nothing, so a redelivered or replayed erasure deletes nothing twice).

Counts, attendance, scores and the log's entries are untouched. Like every projection it
depends on the events alone, so a rebuild gives the same documents (it does not delete files:
the live projection did).
"""

from __future__ import annotations

from shared import events as ev
from shared.privacy.reveal import ERASED
from shared.readmodels.documents import CONTACT, INBOX, PAPER, PERSON, STUDENT
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects
from shared.readmodels.times import iso


@projects(ev.PersonDataErased)
def person_data_erased(docs: Batch, e: ev.PersonDataErased) -> None:
    person_id, at = str(e.aggregate_id), iso(e.occurred_at)
    person = docs.get(PERSON, person_id)
    if person is not None:
        person.name, person.erased, person.erased_at = ERASED, True, at
        docs.put(PERSON, person_id, e.centre_id, person)
    contact = docs.get(CONTACT, person_id)
    if contact is not None:
        contact.name = contact.email = ERASED
        docs.put(CONTACT, person_id, e.centre_id, contact)
    inbox = docs.get(INBOX, person_id)
    if inbox is not None and (inbox.items or inbox.read_ids):
        inbox.items, inbox.read_ids = [], []
        docs.put(INBOX, person_id, e.centre_id, inbox)
    student = docs.get(STUDENT, person_id)
    for upload_id in sorted(student.paper or {}) if student is not None else ():
        paper = docs.get(PAPER, upload_id)
        if paper is None or paper.files_erased_at:
            continue
        docs.erase_blobs(
            [page.blob_key for page in paper.pages]
            + [comment.blob_key for comment in paper.voice_comments]
        )
        paper.files_erased_at = at
        docs.put(PAPER, upload_id, paper.centre_id, paper)
