"""Who is told what: the notifications each event causes, their ids and their local times."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from shared import events as ev
from shared.events import HelpPriority
from shared.notifications import (
    Audience,
    NotificationPriority,
    NotificationType,
    local_time,
    notifications_for,
)
from shared.tenancy.roles import Role

CENTRE = "sydney"
SESSION = uuid4()
TUTOR = str(uuid4())
ANNA, BEN = str(uuid4()), str(uuid4())
ANNA_MUM = str(uuid4())
SUPERVISOR, ADMIN = str(uuid4()), str(uuid4())
SYSTEM = UUID(int=0)
NOW = datetime(2025, 4, 5, 22, 0, tzinfo=UTC)


def audience(**changes: object) -> Audience:
    base: dict[str, object] = {
        "time_zone": "Australia/Sydney",
        "session_title": "Fractions clinic",
        "session_starts_at": datetime(2025, 4, 5, 23, 30, tzinfo=UTC),
        "tutor_id": TUTOR,
        "student_ids": (ANNA, BEN),
        "parents": {ANNA: (ANNA_MUM,)},
        "staff": (SUPERVISOR, ADMIN),
        "homework_title": "Long division",
    }
    base.update(changes)
    return Audience(**base)  # type: ignore[arg-type]


def envelope(version: int = 3) -> dict[str, object]:
    return {
        "centre_id": CENTRE,
        "aggregate_id": SESSION,
        "aggregate_version": version,
        "occurred_at": NOW,
        "actor_id": SYSTEM,
        "actor_role": Role.CENTER_ADMIN,
        "session_id": SESSION,
    }


def reminder(starts_at: datetime) -> ev.SessionReminderSent:
    return ev.SessionReminderSent(**envelope(), starts_at=starts_at, minutes_before=15)  # type: ignore[arg-type]


def test_a_session_reminder_tells_the_tutor_the_students_and_their_parents() -> None:
    told = notifications_for(reminder(datetime(2025, 4, 5, 23, 30, tzinfo=UTC)), audience())
    assert {n.person_id for n in told} == {TUTOR, ANNA, BEN, ANNA_MUM}
    assert {n.type for n in told} == {NotificationType.SESSION_REMINDER}
    tutor = next(n for n in told if n.person_id == TUTOR)
    assert tutor.title == "Fractions clinic starts in 15 minutes"
    assert tutor.link == f"/api/v1/sessions/{SESSION}/control-center"
    mum = next(n for n in told if n.person_id == ANNA_MUM)
    assert mum.link == f"/api/v1/students/{ANNA}/overview"
    assert all(n.at == "2025-04-05T22:00:00.000000Z" and n.centre_id == CENTRE for n in told)


def test_times_are_in_the_centres_zone_across_the_end_of_daylight_saving() -> None:
    # Sydney leaves daylight saving at 03:00 AEDT on Sunday 6 April 2025 (16:00 UTC on the 5th).
    before = notifications_for(reminder(datetime(2025, 4, 4, 23, 30, tzinfo=UTC)), audience())
    after = notifications_for(reminder(datetime(2025, 4, 5, 23, 30, tzinfo=UTC)), audience())
    assert before[0].body == "Fractions clinic starts at Sat 5 Apr 2025, 10:30 AEDT."
    assert after[0].body == "Fractions clinic starts at Sun 6 Apr 2025, 09:30 AEST."


def test_times_are_in_the_centres_zone_across_the_start_of_daylight_saving() -> None:
    # Sydney enters daylight saving at 02:00 AEST on Sunday 5 October 2025 (16:00 UTC on the 4th).
    assert local_time(datetime(2025, 10, 4, 15, 59, tzinfo=UTC), "Australia/Sydney") == (
        "Sun 5 Oct 2025, 01:59 AEST"
    )
    assert local_time(datetime(2025, 10, 4, 16, 0, tzinfo=UTC), "Australia/Sydney") == (
        "Sun 5 Oct 2025, 03:00 AEDT"
    )


def test_an_unknown_time_zone_renders_in_utc() -> None:
    assert local_time(NOW, "Mars/Olympus") == "Sat 5 Apr 2025, 22:00 UTC"


def test_ids_are_the_same_for_a_redelivered_event_and_differ_per_person_and_event() -> None:
    event = reminder(datetime(2025, 4, 5, 23, 30, tzinfo=UTC))
    first = notifications_for(event, audience())
    again = notifications_for(event, audience())
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    assert len({n.notification_id for n in first}) == len(first)
    later = ev.SessionReminderSent(
        **envelope(4),  # type: ignore[arg-type]
        starts_at=datetime(2025, 4, 5, 23, 30, tzinfo=UTC),
        minutes_before=15,
    )
    assert not {n.notification_id for n in first} & {
        n.notification_id for n in notifications_for(later, audience())
    }


def test_an_attendance_reminder_tells_only_the_tutor() -> None:
    event = ev.AttendanceReminderSent(
        **envelope(),  # type: ignore[arg-type]
        unmarked_student_ids=[UUID(ANNA), UUID(BEN)],
    )
    (told,) = notifications_for(event, audience())
    assert told.person_id == TUTOR
    assert told.type is NotificationType.ATTENDANCE_REMINDER
    assert told.body == "2 students have no attendance mark yet."


def test_an_escalation_tells_the_centres_supervisors_and_admins() -> None:
    event = ev.HelpRequestEscalated(
        **envelope(),  # type: ignore[arg-type]
        student_id=UUID(ANNA),
        help_request_id=uuid4(),
        priority=HelpPriority.URGENT,
        sla_due_at=datetime(2025, 4, 5, 21, 55, tzinfo=UTC),
    )
    told = notifications_for(event, audience())
    assert {n.person_id for n in told} == {SUPERVISOR, ADMIN}
    assert {n.priority for n in told} == {NotificationPriority.URGENT}
    assert "by Sun 6 Apr 2025, 07:55 AEST" in told[0].body


def test_catch_up_reminders_and_overdue_tell_the_student_and_parents() -> None:
    for event_type, kind in (
        (ev.CatchUpReminderSent, NotificationType.CATCH_UP_REMINDER),
        (ev.CatchUpBecameOverdue, NotificationType.CATCH_UP_OVERDUE),
    ):
        event = event_type(
            **envelope(),  # type: ignore[arg-type]
            catch_up_id=uuid4(),
            student_id=UUID(ANNA),
            due_at=datetime(2025, 4, 6, 7, 0, tzinfo=UTC),
        )
        told = notifications_for(event, audience())
        assert {n.person_id for n in told} == {ANNA, ANNA_MUM}
        assert {n.type for n in told} == {kind}
        assert "Sun 6 Apr 2025, 17:00 AEST" in told[0].body


def test_homework_reminders_and_overdue_tell_the_student_and_parents() -> None:
    homework = uuid4()
    for event_type, kind in (
        (ev.HomeworkDueReminderSent, NotificationType.HOMEWORK_REMINDER),
        (ev.HomeworkBecameOverdue, NotificationType.HOMEWORK_OVERDUE),
    ):
        fields = envelope()
        del fields["session_id"]
        event = event_type(
            **fields,  # type: ignore[arg-type]
            homework_id=homework,
            student_id=UUID(BEN),
            due_at=datetime(2025, 4, 6, 7, 0, tzinfo=UTC),
        )
        told = notifications_for(event, audience())
        assert {n.person_id for n in told} == {BEN}  # Ben has no parent on record
        assert told[0].type is kind
        assert told[0].title.startswith("Long division is")
        assert told[0].link == f"/api/v1/homework/{homework}"


def test_a_cancelled_session_tells_students_and_parents_but_not_the_tutor() -> None:
    event = ev.SessionCancelled(**envelope(), reason="Tutor unwell")  # type: ignore[arg-type]
    told = notifications_for(event, audience())
    assert {n.person_id for n in told} == {ANNA, ANNA_MUM, BEN}
    assert (
        told[0].body == "Fractions clinic on Sun 6 Apr 2025, 09:30 AEST is cancelled: Tutor unwell"
    )


def test_a_parent_of_two_students_in_one_session_is_told_once() -> None:
    event = ev.SessionCancelled(**envelope(), reason="Flood")  # type: ignore[arg-type]
    told = notifications_for(event, audience(parents={ANNA: (ANNA_MUM,), BEN: (ANNA_MUM,)}))
    assert [n.person_id for n in told].count(ANNA_MUM) == 1


def test_a_session_the_system_completed_tells_its_tutor() -> None:
    event = ev.SessionEnded(**envelope() | {"actor_role": Role.SYSTEM})  # type: ignore[arg-type]
    (told,) = notifications_for(event, audience())
    assert told.person_id == TUTOR and told.type is NotificationType.SESSION_AUTO_COMPLETED
    assert "completed at Sun 6 Apr 2025, 08:00 AEST" in told.body


def test_paper_handed_back_tells_the_student_and_parents_with_the_score() -> None:
    upload = uuid4()
    fields = envelope() | {"aggregate_id": upload, "actor_role": Role.TEACHER}
    event = ev.PaperHandedBack(
        **fields,  # type: ignore[arg-type]
        student_id=UUID(ANNA),
        work_kind=ev.WorkKind.EXERCISE,
        work_id=uuid4(),
        score=3.5,
        max_score=4,
        feedback="Neat working.",
    )
    told = notifications_for(event, audience(student_name="Anna"))
    bodies = {n.person_id: n.body for n in told}
    assert bodies == {
        ANNA: "Your paper work is marked: 3.5 of 4. Neat working.",
        ANNA_MUM: "Anna's paper work is marked: 3.5 of 4. Neat working.",
    }
    assert {n.type for n in told} == {NotificationType.PAPER_HANDED_BACK}
    assert {n.link for n in told} == {f"/api/v1/paper/uploads/{upload}"}
    assert len({n.notification_id for n in told}) == 2


def test_other_events_tell_nobody() -> None:
    event = ev.SessionStarted(**envelope())  # type: ignore[arg-type]
    assert notifications_for(event, audience()) == []
    ended_by_the_tutor = ev.SessionEnded(**envelope() | {"actor_role": Role.TEACHER})  # type: ignore[arg-type]
    assert notifications_for(ended_by_the_tutor, audience()) == []
