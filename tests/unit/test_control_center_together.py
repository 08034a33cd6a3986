"""Control Centers shaped together (the live gateway's rounds): each follower's view is the one
shaped alone, byte for byte, made of rows worked out once per session; nobody's view holds a
row that is not theirs; parts unchanged since the last picture are reused only when they are
the same JSON."""

from __future__ import annotations

from datetime import UTC, datetime
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
from shared.readmodels.views.control_center import Shapes, shaped_together
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
    store: ReadStore, who: dict[str, Actor], session_id: UUID, now: datetime, shapes: Shapes
) -> dict[str, dict[str, Any]]:
    """Every follower's view, shaped together through one round's reads as the gateway does."""
    reads = cast(ReadStore, RoundReads(store))
    with shaped_together(shapes):
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
    together = shaped(store, who, session_id, now, Shapes())
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


def test_the_next_picture_reuses_what_did_not_change_and_only_that(store: ReadStore) -> None:
    session_id = the_live_session()
    who = followers(store, session_id)
    shapes = Shapes()
    now = datetime.now(UTC)
    before = shaped(store, who, session_id, now, shapes)

    apply_all(store, EVENTS[-HELP_REQUESTS:])
    raisers = {
        str(e.student_id)
        for e, _ in EVENTS[-HELP_REQUESTS:]
        if isinstance(e, events.HelpRequestRaised)
    }
    after = shaped(store, who, session_id, now, shapes)
    expected = alone(store, who, session_id, now)
    for handle in who:
        assert msgspec.json.encode(after[handle]) == msgspec.json.encode(expected[handle])

    old = {row["studentId"]: row for row in before["tutor"]["students"]}
    new = {row["studentId"]: row for row in after["tutor"]["students"]}
    assert raisers and raisers < set(new)
    for student_id, row in new.items():
        if student_id in raisers:
            assert row is not old[student_id] and row["openHelpRequest"] is not None
        else:
            assert row is old[student_id], "an unchanged row is the last picture's"


def test_a_part_is_reused_only_when_it_is_the_same_json() -> None:
    shapes = Shapes()
    first, _ = shapes.reuse("s", {"timing": {"left": 0}, "title": "a"}, [("x", {"late": 0})])
    same, rows = shapes.reuse("s", {"timing": {"left": 0}, "title": "b"}, [("x", {"late": 0})])
    assert same["timing"] is first["timing"] and same["title"] == "b"
    # Equal in Python, not on the wire: the new value is kept.
    changed, rows = shapes.reuse("s", {"timing": {"left": False}}, [("x", {"late": False})])
    assert msgspec.json.encode(changed) == b'{"timing":{"left":false}}'
    assert msgspec.json.encode(rows[0][1]) == b'{"late":false}'


def test_shapes_keep_a_bounded_number_of_sessions() -> None:
    shapes = Shapes(kept=3)
    for number in range(10):
        shapes.reuse(str(number), {"timing": {}}, [])
    assert len(shapes) == 3
