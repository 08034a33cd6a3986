"""The subject-access export: everything tutorpulse keeps about one person, as one JSON
document (``GET /api/v1/people/{personId}/export``, docs/api.md and docs/privacy.md).

- ``events``: every event of the person's centre that names them (their id in any id field, at
  any depth, or as the aggregate's id), in log order, each in its contract's JSON with its
  position, read from the event store's notification log a page at a time up to the head read
  when the export began;
- ``documents``: every read-model document about them (kept under their id, or owned by them:
  their person, student, history months, risk, contact and inbox documents, their homework,
  catch-ups and paper), and for a centre's administrator also the documents that list them
  beside others (sessions, classes, a tutor's day, indexes);
- ``manifest``: who, which centre, when, the event-store position the export reflects (the read
  models had reached it before the documents were read), counts by event type and by document
  kind, and what is not included.

The answer is streamed (a line per event or document; memory stays bounded whatever the size
of the log), so ``manifest`` comes last; JSON objects are unordered. Personal texts travel
sealed like everywhere else and are opened at the edge for the caller's centre
(:mod:`shared.http.opening`), so an erased person's read ``[erased]``. Texts of other people
(another student's note in a session the person was in) are withheld before that
(``[withheld]``): the export is about its subject.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import anyio.to_thread
import msgspec
from eventsourcing.persistence import Notification

from services.query.answers import Shown
from shared import events
from shared.privacy.cipher import TOKEN, CiphertextError, parse
from shared.readmodels.access import NotVisible
from shared.readmodels.documents import KINDS, PERSON, Kind, encode
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor, Forbidden, Role

PAGE = 1000
"""Events read from the notification log at a time."""

WITHHELD = "[withheld]"
"""What a sealed text of someone other than the export's subject reads as in the export."""

OWN_KINDS = frozenset(
    {"person", "student", "student_sessions", "student_risk", "contact", "inbox", "tutor"}
)
"""Kinds of document kept under a person's id (a history month: ``<id>:<month>``)."""

NOT_INCLUDED = (
    "the files of uploaded paper work and voice comments: the events and documents name them "
    "(blob keys), the file store keeps them",
    "e-mail and webhook deliveries already sent: outside tutorpulse once sent",
    "texts of other people in the same events and documents: shown as [withheld]",
    "the person's data key and the key store's row (an erasure's tombstone: who, when, why, "
    "in the PersonDataErased event above)",
)
LISTING_NOT_INCLUDED = (
    "documents that list this student beside others (sessions, classes, a tutor's day, "
    "indexes): their own entries are in the events and in the student's documents"
)


class ExportedEvent(Shown, kw_only=True):
    position: int
    """The event's notification id in the event store."""
    event: dict[str, Any]
    """The event in its contract's JSON (docs/events.md)."""


class ExportedDocument(Shown, kw_only=True):
    kind: str
    """The read model's kind of document (``shared/readmodels/documents``)."""
    key: str
    version: int
    document: dict[str, Any]
    """The document as the read-model store keeps it."""


class Manifest(Shown, kw_only=True):
    person_id: str
    centre_id: str
    role: str
    """The person's role in the centre."""
    erased: bool
    """Whether the person's data was erased (their texts then read ``[erased]``)."""
    exported_at: str
    position: int
    """The event store's head when the export began: every event up to it is reflected, and
    the read models had reached it before the documents were read."""
    events: int
    documents: int
    events_by_type: dict[str, int]
    documents_by_kind: dict[str, int]
    not_included: list[str]


class ExportAnswer(Shown, kw_only=True):
    events: list[ExportedEvent]
    documents: list[ExportedDocument]
    manifest: Manifest


@runtime_checkable
class EventLog(Protocol):
    """What the export reads events from: the event store's head and its notification log."""

    def head(self) -> int: ...

    def page(self, after: int, limit: int, stop: int) -> Sequence[Notification]: ...


def subject(store: ReadStore, actor: Actor, person_id: UUID) -> tuple[str, bool, bool]:
    """The person's role, whether the read models show them erased, and whether the caller
    sees the documents that list others too;
    :class:`NotVisible` (404) for a person not of the caller's centre, :class:`Forbidden`
    (403) for a caller other than the centre's administrator or the student's guardian."""
    person = store.get(PERSON, str(person_id))
    if person is None or person.centre_id != actor.centre_id:
        raise NotVisible("no such person in this centre")
    if actor.role in (Role.CENTER_ADMIN, Role.SUPER_ADMIN):
        return person.doc.role.value, person.doc.erased is True, True
    if (
        actor.role is Role.PARENT
        and person.doc.role is Role.STUDENT
        and person.doc.guardian_id == str(actor.user_id)
    ):
        return person.doc.role.value, person.doc.erased is True, False
    raise Forbidden(
        "a person's data is exported for the centre's administrator, or a student's for "
        "their guardian"
    )


_TOKEN_BYTES = re.compile(TOKEN.pattern.encode("ascii"))
_encoder = msgspec.json.Encoder()


def _withhold(data: bytes, person_id: UUID) -> bytes:
    """``data`` with every sealed text of someone other than ``person_id`` withheld."""
    if b"pd1." not in data:
        return data

    def kept(found: re.Match[bytes]) -> bytes:
        try:
            if parse(found.group(0).decode("ascii")).person_id == person_id:
                return found.group(0)
        except CiphertextError:
            pass
        return WITHHELD.encode("ascii")

    return _TOKEN_BYTES.sub(kept, data)


def _documents_of(
    store: ReadStore, kind: Kind[Any], centre_id: str, person_id: UUID, listing: bool
) -> list[tuple[str, int, str]]:
    """(key, version, JSON) of every document of ``kind`` about the person."""
    wanted = str(person_id)
    found = []
    for stored in store.centre_docs(kind, centre_id):
        text = encode(stored.doc)
        own = (
            kind.name in OWN_KINDS and (stored.key == wanted or stored.key.startswith(wanted + ":"))
        ) or wanted in (
            str(getattr(stored.doc, "student_id", None)),
            str(getattr(stored.doc, "person_id", None)),
        )
        if own or (listing and wanted in text):
            found.append((stored.key, stored.version, text))
    return found


async def export(
    store: ReadStore,
    log: EventLog,
    actor: Actor,
    person_id: UUID,
    *,
    role: str,
    listing: bool,
    erased: bool,
    position: int,
) -> AsyncIterator[bytes]:
    """The export's JSON, a line at a time (see the module)."""
    centre = actor.centre_id
    needle = str(person_id).encode("ascii")
    by_type: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    yield b'{"events":[\n'
    after = 0
    first = True
    while after < position:
        page = await anyio.to_thread.run_sync(log.page, after, PAGE, position)
        if not page:
            break
        lines: list[bytes] = []
        for notification in page:
            state = notification.state
            if needle not in state or events.decode_header(state).centre_id != centre:
                continue
            event = events.decode(state, notification.topic)
            by_type[event.type_name] += 1
            line = b'{"position":%d,"event":%s}' % (notification.id, events.encode(event))
            lines.append(line if first else b"," + line)
            first = False
        after = page[-1].id
        if lines:
            yield _withhold(b"\n".join(lines) + b"\n", person_id)
    yield b'],"documents":[\n'
    first = True
    for name, kind in KINDS.items():
        found = await anyio.to_thread.run_sync(
            _documents_of, store, kind, centre, person_id, listing
        )
        for key, version, text in found:
            by_kind[name] += 1
            line = b'{"kind":%s,"key":%s,"version":%d,"document":%s}\n' % (
                _encoder.encode(name),
                _encoder.encode(key),
                version,
                text.encode(),
            )
            yield _withhold(line if first else b"," + line, person_id)
            first = False
    manifest = Manifest(
        person_id=str(person_id),
        centre_id=centre,
        role=role,
        erased=erased,
        exported_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        position=position,
        events=sum(by_type.values()),
        documents=sum(by_kind.values()),
        events_by_type=dict(sorted(by_type.items())),
        documents_by_kind=dict(sorted(by_kind.items())),
        not_included=[*NOT_INCLUDED, *(() if listing else (LISTING_NOT_INCLUDED,))],
    )
    yield b'],"manifest":' + _encoder.encode(manifest) + b"}\n"
