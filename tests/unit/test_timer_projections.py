"""What the scheduler records, projected: each timer event sets its field once, a redelivery
changes nothing, a session ended by a person is not marked automatic, and documents written
before these fields existed keep decoding without them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared import events as ev
from shared.readmodels.documents import (
    CATCH_UP,
    HOMEWORK,
    SESSION,
    STUDENT,
    TUTOR,
    CatchUp,
    Session,
    as_json,
    encode,
)
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore
from shared.tenancy.roles import SYSTEM_ACTOR_ID, Role
from tests.readside import read_store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TUTOR_ID, ANN, BEN = uuid4(), uuid4(), uuid4()


class History:
    """Events of one centre, numbered as the event store would."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self.position = 0
        self.versions: dict[UUID, int] = {}

    def record(
        self,
        kind: type[ev.Event],
        aggregate: UUID,
        minutes: float,
        *,
        by: Role = Role.SYSTEM,
        **fields: Any,
    ) -> ev.Event:
        self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        event = kind(
            centre_id="alpha",
            aggregate_id=aggregate,
            aggregate_version=self.versions[aggregate],
            occurred_at=T0 + timedelta(minutes=minutes),
            actor_id=SYSTEM_ACTOR_ID if by is Role.SYSTEM else TUTOR_ID,
            actor_role=by,
            **fields,
        )
        self.apply(event)
        return event

    def apply(self, event: ev.Event) -> None:
        self.position += 1
        apply_all(self.store, [(event, self.position)])

    def session(self, key: UUID) -> Session:
        found = self.store.get(SESSION, str(key))
        assert found is not None
        return found.doc


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    store = read_store(tmp_path)
    yield History(store)
    store.close()


def a_session(h: History, *students: UUID) -> UUID:
    session = uuid4()
    h.record(
        ev.SessionScheduled,
        session,
        0,
        by=Role.TEACHER,
        session_id=session,
        title="Ratios",
        tutor_id=TUTOR_ID,
        starts_at=T0 + timedelta(hours=1),
        ends_at=T0 + timedelta(hours=2),
        time_zone="Australia/Sydney",
        mode=ev.SessionMode.ONLINE,
        meeting_link="https://meet.example.org/r",
    )
    for student in students:
        h.record(
            ev.StudentEnrolled, session, 1, by=Role.TEACHER, session_id=session, student_id=student
        )
    return session


def test_a_session_reminded_completed_by_the_system_and_its_attendance_reminder(
    history: History,
) -> None:
    session = a_session(history, ANN, BEN)
    reminder = history.record(
        ev.SessionReminderSent,
        session,
        45,
        session_id=session,
        starts_at=T0 + timedelta(hours=1),
        minutes_before=15,
    )
    history.apply(reminder)  # redelivered: nothing changes
    found = history.store.get(SESSION, str(session))
    assert found is not None and found.doc.reminded_at == "2026-03-02T09:45:00.000000Z"
    assert found.version == 4  # scheduled, two enrolments, the reminder once
    history.record(ev.SessionStarted, session, 60, by=Role.TEACHER, session_id=session)
    history.record(ev.SessionEnded, session, 150, session_id=session)
    history.record(
        ev.AttendanceReminderSent, session, 165, session_id=session, unmarked_student_ids=[ANN]
    )
    doc = history.session(session)
    assert doc.status is ev.SessionStatus.COMPLETED and doc.auto_completed is True
    assert as_json(doc)["attendanceReminder"] == {
        "sentAt": "2026-03-02T11:45:00.000000Z",
        "unmarkedStudentIds": [str(ANN)],
    }

    by_hand = a_session(history, ANN)
    history.record(ev.SessionStarted, by_hand, 60, by=Role.TEACHER, session_id=by_hand)
    history.record(ev.SessionEnded, by_hand, 120, by=Role.TEACHER, session_id=by_hand)
    stored = as_json(history.session(by_hand))
    assert stored["status"] == "COMPLETED"
    assert not {"autoCompleted", "remindedAt", "attendanceReminder"} & set(stored)


def test_an_escalation_reaches_the_session_the_tutor_and_the_student(history: History) -> None:
    session = a_session(history, ANN)
    history.record(ev.SessionStarted, session, 60, by=Role.TEACHER, session_id=session)
    seat, request = uuid4(), uuid4()
    history.record(
        ev.HelpRequestRaised,
        seat,
        70,
        by=Role.STUDENT,
        session_id=session,
        student_id=ANN,
        help_request_id=request,
        priority=ev.HelpPriority.HIGH,
        sla_due_at=T0 + timedelta(minutes=75),
    )
    history.record(
        ev.HelpRequestEscalated,
        seat,
        75,
        session_id=session,
        student_id=ANN,
        help_request_id=request,
        priority=ev.HelpPriority.HIGH,
        sla_due_at=T0 + timedelta(minutes=75),
    )
    escalated = "2026-03-02T10:15:00.000000Z"
    shown = history.session(session).students[str(ANN)].help_requests[str(request)]
    assert (shown.escalated_at, shown.status) == (escalated, ev.HelpRequestStatus.PENDING)
    tutor = history.store.get(TUTOR, str(TUTOR_ID))
    assert tutor is not None and tutor.doc.open_help[str(request)].escalated_at == escalated
    student = history.store.get(STUDENT, str(ANN))
    assert student is not None
    assert student.doc.sessions[str(session)].help_requests[str(request)].escalated_at == escalated


def test_a_catch_up_reminded_and_overdue_stays_open_in_every_document(history: History) -> None:
    session = a_session(history, ANN)
    catch_up, due = uuid4(), T0 + timedelta(days=2)
    history.record(
        ev.CatchUpAssigned,
        catch_up,
        10,
        by=Role.TEACHER,
        session_id=session,
        student_id=ANN,
        due_at=due,
        reason="Missed ratios",
    )
    timer: dict[str, Any] = {
        "session_id": session,
        "catch_up_id": catch_up,
        "student_id": ANN,
        "due_at": due,
    }
    history.record(ev.CatchUpReminderSent, catch_up, 60 * 24, **timer)
    history.record(ev.CatchUpBecameOverdue, catch_up, 60 * 48, **timer)
    found = history.store.get(CATCH_UP, str(catch_up))
    assert found is not None
    own: CatchUp = found.doc
    assert own.status is ev.CatchUpStatus.PENDING
    assert (own.reminded_at, own.overdue_at) == (
        "2026-03-03T09:00:00.000000Z",
        "2026-03-04T09:00:00.000000Z",
    )
    row = history.session(session).students[str(ANN)].catch_ups[str(catch_up)]
    assert (row.reminded_at, row.overdue_at) == (own.reminded_at, own.overdue_at)
    tutor = history.store.get(TUTOR, str(TUTOR_ID))
    assert tutor is not None and tutor.doc.catch_ups[str(catch_up)].overdue_at == own.overdue_at
    history.record(
        ev.CatchUpCompleted, catch_up, 60 * 50, by=Role.STUDENT, session_id=session, student_id=ANN
    )
    tutor = history.store.get(TUTOR, str(TUTOR_ID))
    assert tutor is not None and str(catch_up) not in tutor.doc.catch_ups  # done, if late


def test_homework_reminded_shows_in_its_document_and_the_students(history: History) -> None:
    homework, due = uuid4(), T0 + timedelta(days=1)
    history.record(
        ev.HomeworkAssigned,
        homework,
        0,
        by=Role.TEACHER,
        student_id=ANN,
        teacher_id=TUTOR_ID,
        title="Halves",
        exercise_ids=(uuid4(),),
        max_score=10,
        due_at=due,
    )
    history.record(
        ev.HomeworkDueReminderSent,
        homework,
        60 * 20,
        homework_id=homework,
        student_id=ANN,
        due_at=due,
    )
    found = history.store.get(HOMEWORK, str(homework))
    assert found is not None and found.doc.reminded_at == "2026-03-03T05:00:00.000000Z"
    student = history.store.get(STUDENT, str(ANN))
    assert student is not None
    assert student.doc.homework[str(homework)].reminded_at == found.doc.reminded_at


def test_documents_written_before_keep_their_json_until_a_timer_sets_a_field() -> None:
    """No new key appears in a stored document that no timer touched."""
    session = Session(
        session_id="s",
        centre_id="c",
        title="t",
        tutor_id="u",
        status=ev.SessionStatus.SCHEDULED,
        starts_at="2026-03-02T10:00:00.000000Z",
        ends_at="2026-03-02T11:00:00.000000Z",
        time_zone="UTC",
        mode=ev.SessionMode.ONLINE,
    )
    stored = encode(session)
    assert not {"remindedAt", "attendanceReminder", "autoCompleted"} & set(as_json(session))
    assert encode(SESSION.decode(stored)) == stored
