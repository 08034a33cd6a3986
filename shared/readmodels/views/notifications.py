"""A person's inbox as they are shown it: their own notifications only, newest first, a page at
a time, with how many are unread."""

from __future__ import annotations

import base64
import json
from typing import Final

from shared.readmodels.access import View
from shared.readmodels.documents import CHANNELS, INBOX, Inbox, InboxItem, as_json
from shared.readmodels.store import ReadStore
from shared.tenancy import Actor

LIVE_PAGE: Final = 50
"""Notifications the live ``notifications`` topic shows (the newest)."""

PageKey = tuple[str, str]
"""Where a page ends: the last item's time and id."""


def page_cursor(item: InboxItem) -> str:
    raw = json.dumps([item.at, item.notification_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_page_cursor(cursor: str) -> PageKey:
    """The key a :func:`page_cursor` holds; ``ValueError`` for anything it did not make."""
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as error:
        raise ValueError("not a cursor this API returned") from error
    if not (isinstance(at, str) and isinstance(key, str)):
        raise ValueError("not a cursor this API returned")
    return at, key


def _own_inbox(store: ReadStore, actor: Actor) -> tuple[int, Inbox]:
    """The actor's inbox in the centre they act in (an empty one if they were never told
    anything there)."""
    person = str(actor.user_id)
    stored = store.get(INBOX, person)
    if stored is None or stored.centre_id != actor.centre_id:
        return 0, Inbox(person_id=person, centre_id=actor.centre_id)
    return stored.version, stored.doc


def _unread(inbox: Inbox) -> int:
    return sum(not item.read for item in inbox.items)


def inbox(
    store: ReadStore,
    actor: Actor,
    *,
    unread_only: bool = False,
    limit: int = LIVE_PAGE,
    after: PageKey | None = None,
) -> View:
    """A page of the actor's notifications, newest first; ``next`` continues it."""
    version, doc = _own_inbox(store, actor)
    items = [i for i in doc.items if not (unread_only and i.read)]
    if after is not None:
        items = [i for i in items if (i.at, i.notification_id) < after]
    page = items[:limit]
    return View(
        version,
        {
            "personId": doc.person_id,
            "unread": _unread(doc),
            "items": [as_json(i) for i in page],
            "next": page_cursor(page[-1]) if len(items) > limit else None,
        },
    )


def unread_count(store: ReadStore, actor: Actor) -> View:
    version, doc = _own_inbox(store, actor)
    return View(version, {"personId": doc.person_id, "unread": _unread(doc)})


def preferences(store: ReadStore, actor: Actor) -> View:
    """Which channels besides the inbox each type of the actor's notifications reaches."""
    version, doc = _own_inbox(store, actor)
    return View(
        version,
        {
            "personId": doc.person_id,
            "channels": {
                kind: [str(c) for c in chosen] for kind, chosen in doc.preferences.items()
            },
        },
    )


def channels(store: ReadStore, actor: Actor) -> View:
    """The actor's centre's channels, never the webhook secret (only whether there is one)."""
    stored = store.get(CHANNELS, actor.centre_id)
    doc = stored.doc if stored is not None and stored.centre_id == actor.centre_id else None
    return View(
        stored.version if stored is not None and doc is not None else 0,
        {
            "centreId": actor.centre_id,
            "webhookUrl": doc.webhook_url if doc is not None else None,
            "webhookSecretSet": bool(doc is not None and doc.webhook_secret),
            "emailEnabled": bool(doc is not None and doc.email_enabled),
        },
    )
