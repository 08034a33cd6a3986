"""The inbox read model: notifications land once in each person's inbox, newest first, and
marking read gives the same inbox whichever of the two arrives first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

from shared import events as ev
from shared.events.notifications import AllNotificationsRead, NotificationsRead
from shared.readmodels.documents import CENTRE_STAFF, INBOX, PERSON, SESSION, Inbox, Session
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.tenancy.roles import Role
from tests.readside import demo_events, read_store

SYSTEM = UUID(int=0)


def projected(folder: Path) -> ReadStore:
    store = read_store(folder)
    apply_all(store, demo_events())
    return store


def a_session_with_students(store: ReadStore) -> Session:
    return next(
        s.doc
        for s in store.docs(SESSION)
        if sum(seat.enrolled for seat in s.doc.students.values()) >= 2
    )


def reminder(store: ReadStore, session: Session, minutes: int = 15) -> ev.SessionReminderSent:
    with store.transaction() as tx:
        version = tx.aggregate_version(session.session_id)
    return ev.SessionReminderSent(
        centre_id=session.centre_id,
        aggregate_id=UUID(session.session_id),
        aggregate_version=version + 1,
        occurred_at=datetime(2025, 4, 5, 22, 0, tzinfo=UTC) + timedelta(minutes=minutes),
        actor_id=SYSTEM,
        actor_role=Role.CENTER_ADMIN,
        session_id=UUID(session.session_id),
        starts_at=datetime(2025, 4, 5, 23, 30, tzinfo=UTC),
        minutes_before=minutes,
    )


def inbox(store: ReadStore, person: str) -> Inbox:
    stored = store.get(INBOX, person)
    assert stored is not None
    return stored.doc


def read_event(person: str, ids: list[str], version: int = 1) -> NotificationsRead:
    return NotificationsRead(
        centre_id="main-campus",
        aggregate_id=uuid5(UUID(person), "inbox"),
        aggregate_version=version,
        occurred_at=datetime(2025, 4, 6, tzinfo=UTC),
        actor_id=UUID(person),
        actor_role=Role.TEACHER,
        person_id=UUID(person),
        notification_ids=[UUID(i) for i in ids],
    )


def test_a_reminder_reaches_each_persons_inbox_once(tmp_path: Path) -> None:
    store = projected(tmp_path)
    session = a_session_with_students(store)
    event = reminder(store, session)
    apply_all(store, [(event, 10_000)])
    apply_all(store, [(event, 10_000)])  # redelivered
    students = [s for s, seat in session.students.items() if seat.enrolled]
    parents = [
        p.doc.guardian_id
        for s in students
        if (p := store.get(PERSON, s)) is not None and p.doc.guardian_id
    ]
    for person in [session.tutor_id, *students, *parents]:
        items = inbox(store, person).items
        assert len(items) == 1, person
        assert items[0].title == f"{session.title} starts in 15 minutes"
        assert not items[0].read


def test_newest_first(tmp_path: Path) -> None:
    store = projected(tmp_path)
    session = a_session_with_students(store)
    first = reminder(store, session, 30)
    apply_all(store, [(first, 10_000)])
    second = reminder(store, session, 15)  # the next version, but earlier in time
    apply_all(store, [(second, 10_001)])
    titles = [i.title for i in inbox(store, session.tutor_id).items]
    assert titles == [
        f"{session.title} starts in 30 minutes",
        f"{session.title} starts in 15 minutes",
    ]


def test_marking_read_before_or_after_the_notification_arrives_is_the_same(
    tmp_path: Path,
) -> None:
    notification_first = projected(tmp_path / "notification-first")
    session = a_session_with_students(notification_first)
    apply_all(notification_first, [(reminder(notification_first, session), 10_000)])
    (only,) = inbox(notification_first, session.tutor_id).items
    notification = only.notification_id
    apply_all(notification_first, [(read_event(session.tutor_id, [notification]), 10_001)])
    read_first = projected(tmp_path / "read-first")
    apply_all(read_first, [(read_event(session.tutor_id, [notification]), 10_000)])
    assert inbox(read_first, session.tutor_id).read_ids == [notification]
    apply_all(read_first, [(reminder(read_first, session), 10_001)])
    a = inbox(notification_first, session.tutor_id)
    b = inbox(read_first, session.tutor_id)
    assert a.items == b.items and a.items[0].read and b.read_ids == []


def test_all_read_marks_everything_up_to_its_time(tmp_path: Path) -> None:
    store = projected(tmp_path)
    session = a_session_with_students(store)
    apply_all(store, [(reminder(store, session, 30), 10_000)])
    apply_all(store, [(reminder(store, session, 15), 10_001)])
    _newest, older = inbox(store, session.tutor_id).items
    person = session.tutor_id
    event = AllNotificationsRead(
        centre_id=session.centre_id,
        aggregate_id=uuid5(UUID(person), "inbox"),
        aggregate_version=1,
        occurred_at=datetime(2025, 4, 6, tzinfo=UTC),
        actor_id=UUID(person),
        actor_role=Role.TEACHER,
        person_id=UUID(person),
        up_to=datetime.fromisoformat(older.at),
    )
    apply_all(store, [(event, 10_002)])
    assert [i.read for i in inbox(store, person).items] == [False, True]


def test_the_centres_supervisors_and_admins_are_its_staff(tmp_path: Path) -> None:
    store = projected(tmp_path)
    staff = store.get(CENTRE_STAFF, "main-campus")
    assert staff is not None
    roles = {
        p.doc.role for person in staff.doc.staff if (p := store.get(PERSON, person)) is not None
    }
    assert roles == {Role.CENTER_SUPERVISOR, Role.CENTER_ADMIN}
