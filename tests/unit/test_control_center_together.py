"""Control Centers shaped together (the live gateway's rounds): each follower's view is the one
shaped alone, byte for byte, made of rows worked out once per session; nobody's view holds a
row that is not theirs; a changed session, other names or another instant get a picture of
their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import msgspec
import pytest

from services.live_gateway.hub import RoundReads
from shared import events
from shared.readmodels import access
from shared.readmodels.documents import SESSION
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.readmodels.views import apply_merge_patch, merge_patch
from shared.readmodels.views.control_center import HeadPatches, patch_between, shaped_together
from shared.tenancy import Actor, Role
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.readside import demo_events, read_store

EVENTS = demo_events()
HELP_REQUESTS = 2
"""The demo history ends with two help requests in the live session."""


def the_live_session() -> UUID:
    last, _ = EVENTS[-1]
    assert isinstance(last, events.HelpRequestRaised)
    return UUID(str(last.session_id))


def actor(handle: str) -> Actor:
    who = demo_person(handle)
    return Actor(user_id=who.id, role=who.role, centre_id=DEMO_CENTRE)


@pytest.fixture
def store(tmp_path: Path) -> ReadStore:
    store = read_store(tmp_path)
    apply_all(store, EVENTS[:-HELP_REQUESTS])
    return store


def followers(store: ReadStore, session_id: UUID) -> dict[str, Actor]:
    """The session's tutor, a supervisor, every student in it, and the parents among them."""
    stored = store.get(SESSION, str(session_id))
    assert stored is not None
    session = stored.doc
    handles = {"tutor": session.tutor_id, "supervisor": str(actor("david").user_id)}
    seated = {str(demo_person(h).id): h for h in ("jane", "alex", "michael", "sophia", "liam")}
    for student_id in session.students:
        handle = seated.get(student_id)
        if handle is not None:
            handles[handle] = student_id
            guardian = demo_person(handle).guardian
            if guardian is not None:
                handles[guardian] = str(demo_person(guardian).id)
    return {
        handle: Actor(
            user_id=UUID(person_id),
            role=Role.TEACHER
            if handle == "tutor"
            else Role.CENTER_SUPERVISOR
            if handle == "supervisor"
            else demo_person(handle).role,
            centre_id=DEMO_CENTRE,
        )
        for handle, person_id in handles.items()
    }


def shaped(
    store: ReadStore, who: dict[str, Actor], session_id: UUID, now: datetime
) -> dict[str, dict[str, Any]]:
    """Every follower's view, shaped together through one round's reads as the gateway does."""
    reads = cast(ReadStore, RoundReads(store))
    with shaped_together():
        return {h: access.control_center(reads, a, session_id, now).data for h, a in who.items()}


def alone(
    store: ReadStore, who: dict[str, Actor], session_id: UUID, now: datetime
) -> dict[str, dict[str, Any]]:
    return {h: access.control_center(store, a, session_id, now).data for h, a in who.items()}


def test_views_shaped_together_are_the_views_shaped_alone_and_share_their_rows(
    store: ReadStore,
) -> None:
    session_id = the_live_session()
    who = followers(store, session_id)
    assert {"tutor", "supervisor", "robert"} <= set(who) and len(who) >= 5
    now = datetime.now(UTC)
    together = shaped(store, who, session_id, now)
    expected = alone(store, who, session_id, now)
    for handle in who:
        assert msgspec.json.encode(together[handle]) == msgspec.json.encode(expected[handle])

    rows_of = {h: {row["studentId"]: row for row in v["students"]} for h, v in together.items()}
    everyone = rows_of["tutor"]
    assert set(everyone) == set(rows_of["supervisor"]) and len(everyone) >= 3
    for handle, rows in rows_of.items():
        for student_id, row in rows.items():
            assert row is everyone[student_id], "each row worked out once for every follower"
        person = who[handle]
        if person.role is Role.STUDENT:
            assert set(rows) == {str(person.user_id)}, "a student sees their own row alone"
        elif person.role is Role.PARENT:
            children = {
                str(demo_person(h).id)
                for h in ("jane", "alex", "michael", "sophia")
                if demo_person(h).guardian == handle
            }
            assert set(rows) == children & set(everyone), "a parent sees their children's rows"


def test_a_changed_session_and_another_instant_get_pictures_of_their_own(
    store: ReadStore,
) -> None:
    session_id = the_live_session()
    who = followers(store, session_id)
    tutor = who["tutor"]
    now = datetime.now(UTC)
    with shaped_together():
        before = access.control_center(store, tutor, session_id, now).data
        apply_all(store, EVENTS[-HELP_REQUESTS:])
        # The store decodes the session afresh: another document, another picture.
        after = access.control_center(store, tutor, session_id, now).data
        later = access.control_center(store, tutor, session_id, now + timedelta(minutes=7)).data
    assert before["openHelpRequests"] == 0 and after["openHelpRequests"] == HELP_REQUESTS
    assert after == access.control_center(store, tutor, session_id, now).data
    assert later["timing"]["elapsedSeconds"] == after["timing"]["elapsedSeconds"] + 7 * 60
    assert msgspec.json.encode(later) == msgspec.json.encode(
        access.control_center(store, tutor, session_id, now + timedelta(minutes=7)).data
    )


def test_the_difference_of_views_made_together_is_their_merge_patch(store: ReadStore) -> None:
    """One comparison of the session's parts serves every follower, and each follower's patch
    is the merge patch of their two views, byte for byte, their own rows alone."""
    session_id = the_live_session()
    who = followers(store, session_id)
    now = datetime.now(UTC)
    before = shaped(store, who, session_id, now)
    apply_all(store, EVENTS[-HELP_REQUESTS:])
    after = shaped(store, who, session_id, now + timedelta(seconds=30))
    heads: HeadPatches = {}
    for handle in who:
        patch = patch_between(before[handle], after[handle], heads)
        plain = merge_patch(dict(before[handle]), dict(after[handle]))
        assert msgspec.json.encode(patch) == msgspec.json.encode(plain)
        assert apply_merge_patch(before[handle], patch) == after[handle]
        assert "timing" in patch
        if who[handle].role is Role.STUDENT and "students" in patch:
            assert [row["studentId"] for row in patch["students"]] == [str(who[handle].user_id)]
    assert "students" in patch_between(before["tutor"], after["tutor"], heads)
    assert len(heads) == 1, "the session's parts compared once for every follower"
    # Views made alone (the query API's) are compared whole, as before.
    tutor = who["tutor"]
    alone_before = access.control_center(store, tutor, session_id, now).data
    assert patch_between(alone_before, after["tutor"], heads) == merge_patch(
        alone_before, dict(after["tutor"])
    )
