"""Dead-lettered events in the read store: skipped for their aggregate's version, replayed once.

What the projection service does when it dead-letters an event is played here by hand (apply,
and on failure ``Transaction.skip``), so the bookkeeping can be checked event by event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from services.command.application import TutoringCentres
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.seed import seed
from services.projections.dead_letters import NotReplayable, Replayed, forget, reapply
from services.projections.rebuild import rebuild
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.readmodels import projector
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, SkipResult
from shared.settings import load
from shared.tenancy import Actor
from shared.tenancy.demo import demo_person
from tests.readside import demo_events, read_store

Item = tuple[ev.Event, int]


def project(store: ReadStore, items: Iterable[Item]) -> list[Item]:
    """Apply events one by one like the live projection; an event whose handler fails is
    skipped the way the service records a dead letter. Returns the dead-lettered ones."""
    dead: list[Item] = []
    for event, notification_id in items:
        try:
            apply_all(store, [(event, notification_id)])
        except Exception as error:
            with store.transaction() as tx:
                tx.skip(
                    str(event.aggregate_id),
                    event.aggregate_version,
                    notification_id,
                    event.type_name,
                    f"{type(error).__name__}: {error}",
                )
            dead.append((event, notification_id))
    return dead


def reference(folder: Path, items: Iterable[Item]) -> dict[str, list[tuple[object, ...]]]:
    store = read_store(folder, "reference.sqlite")
    apply_all(store, list(items))
    return store.dump(store.generation())


def poison(
    monkeypatch: pytest.MonkeyPatch, event_type: type[ev.Event], which: Callable[[Any], bool]
) -> None:
    """Make the projector's handler of ``event_type`` raise for the events ``which`` picks."""
    real = projector._HANDLERS[event_type]

    def failing(docs: projector.Batch, event: Any) -> None:
        if which(event):
            raise ValueError("cannot be projected")
        real(docs, event)

    monkeypatch.setitem(projector._HANDLERS, event_type, failing)


def test_a_dead_lettered_event_lets_its_aggregate_go_on_and_a_replay_equals_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = list(demo_events())
    expected = reference(tmp_path, items)
    # A seat whose exercise is assigned, started and reported on, and that asks for help later.
    seats: dict[str, list[str]] = {}
    for event, _ in items:
        seats.setdefault(str(event.aggregate_id), []).append(event.type_name)
    work = ["ExerciseAssigned", "ExerciseStarted", "ExerciseProgressReported"]
    seat = next(
        a for a, types in seats.items() if types[1:4] == work and "HelpRequestRaised" in types
    )
    poison(monkeypatch, ev.ExerciseAssigned, lambda e: str(e.aggregate_id) == seat)
    store = read_store(tmp_path)

    dead = project(store, items)

    # The assignment failed; the work moves that need it failed too; the help request applied.
    assert [(e.type_name, e.aggregate_version) for e, _ in dead] == [
        ("ExerciseAssigned", 2),
        ("ExerciseStarted", 3),
        ("ExerciseProgressReported", 4),
    ]
    help_raised = next(
        e for e, _ in items if str(e.aggregate_id) == seat and e.type_name == "HelpRequestRaised"
    )
    assert isinstance(help_raised, ev.HelpRequestRaised)
    session = store.get("session", str(help_raised.session_id))
    assert session is not None
    row = session.doc["students"][str(help_raised.student_id)]
    assert str(help_raised.help_request_id) in row["helpRequests"]
    with store.transaction() as tx:
        assert tx.aggregate_version(seat) == len(seats[seat])
    assert store.dump(store.generation()) != expected

    monkeypatch.undo()  # the fix is released
    results = [reapply(store, event, notification_id) for event, notification_id in dead]

    assert [(r.outcome, r.later_applied) for r in results] == [
        (Replayed.APPLIED_OUT_OF_ORDER, 1)
    ] * 3
    assert store.dump(store.generation()) == expected
    with store.transaction() as tx:
        assert not any(tx.is_skipped(seat, version) for version in (2, 3, 4))
    # Replaying again (a duplicate dead letter) changes nothing.
    assert reapply(store, *dead[0]).outcome is Replayed.ALREADY_IN
    assert store.dump(store.generation()) == expected


def test_a_replay_behind_a_later_overwrite_is_reported_and_a_rebuild_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit of replaying out of band: a student marked ABSENT (dead-lettered), then
    EXCUSED (applied). Replaying ABSENT afterwards puts the older mark on top: the replay says
    that later events of the aggregate were applied first, and a rebuild makes it exact."""
    centres = TutoringCentres(
        load(EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")})
    )
    try:
        sessions = seed(centres)
        live = sessions["Intro to Programming - Live Q&A"]
        john, michael = demo_person("john"), demo_person("michael")
        tutor = Actor(user_id=john.id, role=john.role, centre_id="main-campus")
        centres.handle(
            tutor,
            MarkAttendance(
                session_id=live,
                records=[
                    AttendanceRecord(student_id=michael.id, status=ev.AttendanceStatus.ABSENT)
                ],
            ),
        )
        centres.handle(
            tutor,
            MarkAttendance(
                session_id=live,
                records=[
                    AttendanceRecord(student_id=michael.id, status=ev.AttendanceStatus.EXCUSED)
                ],
            ),
        )
        items = [
            (ev.decode(n.state), n.id) for n in centres.recorder.select_notifications(1, 1_000_000)
        ]
        expected = reference(tmp_path, items)
        poison(
            monkeypatch,
            ev.AttendanceMarked,
            lambda e: (
                e.status is ev.AttendanceStatus.ABSENT
                and e.student_id == michael.id
                and e.session_id == live
            ),
        )
        store = read_store(tmp_path)

        dead = project(store, items)
        assert [(type(e), getattr(e, "status", None)) for e, _ in dead] == [
            (ev.AttendanceMarked, ev.AttendanceStatus.ABSENT)
        ]
        monkeypatch.undo()
        result = reapply(store, *dead[0])

        assert (result.outcome, result.later_applied) == (Replayed.APPLIED_OUT_OF_ORDER, 1)
        session = store.get("session", str(live))
        assert session is not None
        assert session.doc["students"][str(michael.id)]["attendance"] == "ABSENT"
        assert store.dump(store.generation()) != expected
        rebuilt = rebuild(centres, store, settle_timeout=0)
        assert store.dump(rebuilt.generation) == expected
    finally:
        centres.close()


def test_an_event_whose_predecessor_is_missing_waits_for_it(tmp_path: Path) -> None:
    """A dead letter recorded while an earlier event of its aggregate is missing does not move
    the version; once that earlier one is recorded or applied, the version passes both."""
    items = list(demo_events())
    session_id = next(
        str(e.aggregate_id)
        for e, _ in items
        if e.type_name == "SessionScheduled"
        and sum(str(x.aggregate_id) == str(e.aggregate_id) for x, _ in items) >= 5
    )
    mine = [item for item in items if str(item[0].aggregate_id) == session_id]
    others = [item for item in items if str(item[0].aggregate_id) != session_id]
    store = read_store(tmp_path)
    project(store, others + mine[:2])
    third, fourth, fifth = mine[2], mine[3], mine[4]

    def skip(item: Item) -> SkipResult:
        with store.transaction() as tx:
            return tx.skip(
                session_id, item[0].aggregate_version, item[1], item[0].type_name, "test"
            )

    def version() -> int:
        with store.transaction() as tx:
            return tx.aggregate_version(session_id)

    assert skip(fourth) is SkipResult.PENDING and version() == 2
    with pytest.raises(NotReplayable, match="needs v3 first"):
        reapply(store, *fourth)
    assert skip(third) is SkipResult.SKIPPED and version() == 4  # passes the fourth too
    project(store, [fifth])
    assert version() == 5
    assert reapply(store, *third).outcome is Replayed.APPLIED_OUT_OF_ORDER
    assert reapply(store, *fourth).outcome is Replayed.APPLIED_OUT_OF_ORDER
    assert version() == 5
    assert reapply(store, *fourth).outcome is Replayed.ALREADY_IN
    # The session's documents have every event (a session-wide event applied before an
    # enrolment is not exact for the student documents' version counters, hence the report).
    session = store.get("session", session_id)
    assert session is not None
    enrolled = {str(e.student_id) for e, _ in mine if isinstance(e, ev.StudentEnrolled)}
    assert enrolled <= set(session.doc["students"])


def test_a_discarded_dead_letter_is_never_applied_and_its_aggregate_goes_on(tmp_path: Path) -> None:
    items = list(demo_events())
    session_id = next(str(e.aggregate_id) for e, _ in items if e.type_name == "SessionScheduled")
    mine = [item for item in items if str(item[0].aggregate_id) == session_id]
    store = read_store(tmp_path)
    project(store, [item for item in items if str(item[0].aggregate_id) != session_id] + mine[:1])
    with store.transaction() as tx:
        assert (
            tx.skip(session_id, 2, mine[1][1], mine[1][0].type_name, "test") is SkipResult.SKIPPED
        )

    forget(store, mine[1][0], mine[1][1], "discarded: enrolled by mistake")

    with store.transaction() as tx:
        assert tx.aggregate_version(session_id) == 2 and not tx.is_skipped(session_id, 2)
    assert reapply(store, *mine[1]).outcome is Replayed.ALREADY_IN
    project(store, mine[2:])
    with store.transaction() as tx:
        assert tx.aggregate_version(session_id) == len(mine)


def test_dead_letters_recorded_while_their_predecessor_was_missing_are_passed_when_it_is_applied(
    tmp_path: Path,
) -> None:
    """v3 and v4 were dead-lettered (waited too long, or discarded) while v2 was missing. When
    v2 is then applied normally, the version moves past v3 and v4 in the same transaction, so
    v5 applies at once instead of waiting for them in turn; the records stay for a replay."""
    items = list(demo_events())
    session_id = next(
        str(e.aggregate_id)
        for e, _ in items
        if e.type_name == "SessionScheduled"
        and sum(str(x.aggregate_id) == str(e.aggregate_id) for x, _ in items) >= 5
    )
    mine = [item for item in items if str(item[0].aggregate_id) == session_id]
    store = read_store(tmp_path)
    project(store, [item for item in items if str(item[0].aggregate_id) != session_id] + mine[:1])
    second, third, fourth, fifth = mine[1:5]

    with store.transaction() as tx:
        assert tx.skip(session_id, 3, third[1], third[0].type_name, "waited") is SkipResult.PENDING
    forget(store, fourth[0], fourth[1], "discarded: enrolled by mistake")

    apply_all(store, [second])
    with store.transaction() as tx:
        assert tx.aggregate_version(session_id) == 4
        assert tx.is_skipped(session_id, 3) and tx.is_skipped(session_id, 4)
    apply_all(store, [fifth])  # would raise OutOfOrder if the version had stayed at 2
    with store.transaction() as tx:
        assert tx.aggregate_version(session_id) == 5
    assert reapply(store, *third).outcome is Replayed.APPLIED_OUT_OF_ORDER
