"""A centre's year of history, written straight into the event store in bulk.

:func:`seed_year` drives the real aggregates' verbs in memory, the way the handlers do (a
session, its tutor's timetable week, its seats, their catch-ups and the students' attendance
records, changed together), so every event is one the domain would record and each
aggregate's versions are consecutive. Their pending events become stored events through the
application's mapper and are inserted through the recorder in large batches: no HTTP, no
command at a time. Times are those of the history (a clock the domain reads while seeding),
ids are derived from the seed, so the same seed writes the same history.

The centre ends today: every tutor has a session this morning (completed), one LIVE now and
one later today, so that a year's centre and one with only today's sessions
(``events=0``) show the same My Day and Control Center.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import StoredEvent

from services.command.application import TutoringCentres
from services.command.domain import aggregate as aggregate_module
from services.command.domain import homework as homework_module
from services.command.domain import seat as seat_module
from services.command.domain.academic import AcademicProfile
from services.command.domain.aggregate import Aggregate
from services.command.domain.attendance import AttendanceRecord
from services.command.domain.catch_up import CatchUp
from services.command.domain.directory import Centre, Person
from services.command.domain.exercise import Exercise
from services.command.domain.homework import Homework
from services.command.domain.note import TutorNote
from services.command.domain.seat import Seat
from services.command.domain.session import Session
from services.command.domain.timetable import TimetableWeek, TutorTimetable, timetable_week_id
from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    HelpRequestCloseReason,
    NoteVisibility,
    PresenceKind,
    Question,
    SessionMode,
    TeachingMode,
    WorkStatus,
)
from shared.tenancy import Actor, Role
from shared.tenancy.identity import person_id
from shared.tenancy.permissions import system_actor

COURSES = ("maths", "english", "science")
SLOTS = (15, 16, 17, 18, 19)
"""Afternoon hours (UTC) a tutor teaches in; at most one session of a tutor in each."""
EXERCISES_PER_COURSE = 8
STUDENTS_PER_SESSION = (3, 5)
EVENTS_PER_SESSION = 55
"""A first guess at the events one past session writes; corrected as the history is written."""
TODAY_EVENTS_PER_TUTOR = 85
"""About what each tutor's three sessions of today write (kept out of the history budget)."""
HISTORY_DAYS = 364
SLA = {
    HelpPriority.LOW: timedelta(minutes=15),
    HelpPriority.MEDIUM: timedelta(minutes=10),
    HelpPriority.HIGH: timedelta(minutes=5),
    HelpPriority.URGENT: timedelta(minutes=2),
}


@dataclass(frozen=True)
class YearOfHistory:
    """What :func:`seed_year` wrote, and a few of its people and things for a bench."""

    centre_id: str
    events: int
    """Events written (the centre's whole history)."""
    sessions: int
    """Sessions scheduled over the year, today's included."""
    catch_ups: int
    help_requests: int
    tutors: int
    students: int
    head: int
    """The store's highest notification id after seeding."""
    seconds: float
    """How long writing took."""
    admin: Actor
    supervisor: Actor
    tutor: Actor
    """A tutor with a session LIVE now."""
    live_session_id: UUID
    student: Actor
    """A student of the live session, with a year of sessions behind them."""
    student_ids: tuple[UUID, ...]
    tutor_ids: tuple[UUID, ...]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Clock:
    """Stands in for ``datetime`` in the domain modules that read the time while seeding."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self, tz: Any = None) -> datetime:
        return self.at


@contextlib.contextmanager
def _domain_clock(clock: _Clock) -> Iterator[None]:
    """The domain reads ``clock`` instead of the wall clock (process-wide, while seeding)."""
    with (
        mock.patch.object(aggregate_module, "datetime", clock),
        mock.patch.object(seat_module, "datetime", clock),
        mock.patch.object(homework_module, "datetime", clock),
    ):
        yield


@dataclass
class _Pending:
    """Something that happens on a later day (a catch-up done, homework handed in)."""

    at: datetime
    order: int
    act: Callable[[], None] = field(compare=False)

    def __lt__(self, other: _Pending) -> bool:
        return (self.at, self.order) < (other.at, other.order)


class _Writer:
    """Collects the pending events of changed aggregates as stored events and inserts them
    through the recorder in batches."""

    def __init__(self, centres: TutoringCentres, batch: int) -> None:
        self.centres = centres
        self.batch = batch
        self.rows: list[StoredEvent] = []
        self.count = 0

    def save(self, *aggregates: Aggregate) -> None:
        to_stored = self.centres.mapper.to_stored_event
        for aggregate in aggregates:
            for event in aggregate.collect_events():
                self.rows.append(to_stored(event))
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.centres.recorder.insert_events(self.rows)
            self.count += len(self.rows)
            self.rows = []

    @property
    def written(self) -> int:
        return self.count + len(self.rows)


class _Year:
    def __init__(
        self,
        centres: TutoringCentres,
        centre_id: str,
        *,
        tutors: int,
        students: int,
        seed: int,
        now: datetime,
        batch: int,
    ) -> None:
        self.centre_id = centre_id
        self.rng = random.Random(seed)
        self.namespace = uuid5(NAMESPACE_URL, f"tutorpulse:year:{seed}:{centre_id}")
        self.now = now
        self.clock = _Clock(now - timedelta(days=HISTORY_DAYS + 1))
        self.writer = _Writer(centres, batch)
        self.root = Actor(
            user_id=uuid5(self.namespace, "root"), role=Role.SUPER_ADMIN, centre_id=centre_id
        )
        self.system = system_actor(centre_id)
        self.n_tutors, self.n_students = tutors, students
        self.tutors: list[Actor] = []
        self.students: list[Actor] = []
        self.course_of: dict[UUID, str] = {}
        self.lesson_of: dict[UUID, int] = {}
        self.exercises: dict[str, list[Exercise]] = {}
        self.records: dict[UUID, AttendanceRecord] = {}
        self.weeks: dict[UUID, TimetableWeek] = {}
        self.pending: list[_Pending] = []
        self.sessions = self.catch_ups = self.help_requests = 0
        self.serial = 0
        self.live: tuple[Actor, Session] | None = None
        self.live_student: Actor | None = None
        self.keys: dict[UUID, dict[str, str]] = {}
        """Each exercise's right answers."""

    # --- ids and time -----------------------------------------------------------------------

    def id(self, kind: str) -> UUID:
        self.serial += 1
        return uuid5(self.namespace, f"{kind}:{self.serial}")

    def at(self, moment: datetime) -> None:
        self.clock.at = moment

    def later(self, moment: datetime, act: Callable[[], None]) -> None:
        self.serial += 1
        heapq.heappush(self.pending, _Pending(moment, self.serial, act))

    def run_pending(self, until: datetime) -> None:
        while self.pending and self.pending[0].at <= until:
            due = heapq.heappop(self.pending)
            self.at(due.at)
            due.act()

    # --- the centre, its people and its catalogue --------------------------------------------

    def register(self) -> None:
        save = self.writer.save
        save(Centre.register(self.centre_id, by=self.root, name="Year Centre", time_zone="UTC"))
        self.admin = self._person("admin", Role.CENTER_ADMIN)
        self.supervisor = self._person("supervisor", Role.CENTER_SUPERVISOR)
        self.tutors = [self._person(f"tutor-{t}", Role.TEACHER) for t in range(self.n_tutors)]
        parent: Person | None = None
        for s in range(self.n_students):
            if s % 2 == 0:
                parent = self._register(f"parent-{s // 2}", Role.PARENT)
            student = self._person(f"student-{s}", Role.STUDENT, guardian=parent)
            self.students.append(student)
            self.course_of[student.user_id] = COURSES[s % len(COURSES)]
            self.lesson_of[student.user_id] = self.rng.randint(1, 20)
        for course in COURSES:
            self.exercises[course] = [
                self._exercise(course, n) for n in range(EXERCISES_PER_COURSE)
            ]
        for student in self.students:
            profile = AcademicProfile.of(student.user_id, self.centre_id)
            grade = self.rng.randint(3, 10)
            profile.assess(
                self.course_of[student.user_id],
                by=self.tutor_of(student),
                school_grade=grade,
                working_level=max(1, grade - self.rng.randint(0, 2)),
            )
            save(profile)

    def _register(self, handle: str, role: Role, guardian: Person | None = None) -> Person:
        person = Person.register(
            by=self.root,
            name=handle.replace("-", " ").title(),
            email=f"{handle}@{self.centre_id}.example",
            role=role,
            guardian=guardian,
        )
        self.writer.save(person)
        return person

    def _person(self, handle: str, role: Role, guardian: Person | None = None) -> Actor:
        person = self._register(handle, role, guardian)
        assert person.id == person_id(self.centre_id, f"{handle}@{self.centre_id}.example")
        return Actor(user_id=person.id, role=role, centre_id=self.centre_id)

    def _exercise(self, course: str, n: int) -> Exercise:
        written = n % 4 == 3
        exercise = Exercise.publish(
            self.id("exercise"),
            self.centre_id,
            by=self.supervisor,
            title=f"{course.title()} practice {n + 1}",
            course_id=course,
            exercise_type=ExerciseType.SHORT_ANSWER if written else ExerciseType.NUMERICAL,
            difficulty=list(Difficulty)[n % len(Difficulty)],
            questions=[
                Question(
                    question_id=f"q{q}",
                    prompt=f"What is {q + 2} times {n + 3}?",
                    points=2,
                    accepted_answers=() if written else (str((q + 2) * (n + 3)),),
                )
                for q in range(4)
            ],
        )
        self.keys[exercise.id] = {f"q{q}": str((q + 2) * (n + 3)) for q in range(4)}
        self.writer.save(exercise)
        return exercise

    def tutor_of(self, student: Actor) -> Actor:
        return self.tutors[self.students.index(student) % len(self.tutors)]

    def class_of(self, tutor: Actor) -> list[Actor]:
        """The students a tutor teaches (every ``tutors``-th one)."""
        t = self.tutors.index(tutor)
        return self.students[t :: len(self.tutors)]

    # --- one session -------------------------------------------------------------------------

    def schedule(self, tutor: Actor, starts_at: datetime, roster: list[Actor]) -> Session:
        self.at(starts_at - timedelta(days=self.rng.randint(1, 14), hours=self.rng.randint(0, 8)))
        session = Session.schedule(
            self.id("session"),
            by=tutor,
            tutor_id=tutor.user_id,
            title=f"{self.course_of[roster[0].user_id].title()} with {len(roster)}",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=1),
            time_zone="UTC",
            mode=SessionMode.ONLINE,
            meeting_link="https://meet.example.org/year",
        )
        timetable = TutorTimetable(
            tutor.user_id,
            [
                self._week(tutor.user_id, week)
                for week in TutorTimetable.weeks_needed((session.starts_at, session.ends_at))
            ],
        )
        timetable.book(session, by=tutor)
        self.writer.save(session, *timetable.weeks)
        for student in roster:
            sid = student.user_id
            session.enrol(
                sid,
                by=tutor,
                course_id=self.course_of[sid],
                lesson_id=f"{self.course_of[sid]}-{self.lesson_of[sid]}",
            )
        self.writer.save(session)
        self.sessions += 1
        return session

    def _week(self, tutor_id: UUID, week: Any) -> TimetableWeek:
        week_id = timetable_week_id(tutor_id, week)
        found = self.weeks.get(week_id)
        if found is None:
            found = self.weeks[week_id] = TimetableWeek.of(tutor_id, week, self.centre_id)
        return found

    def run(self, tutor: Actor, session: Session, roster: list[Actor], *, until: float) -> None:
        """The session from its start; ``until``: how far into its hour to go (1 ends it)."""
        start = session.starts_at
        minute = timedelta(minutes=1)
        self.at(start)
        session.start(by=tutor)
        self.writer.save(session)
        seats = {s.user_id: Seat.of(session, s.user_id) for s in roster}
        absent = {
            s.user_id
            for s in roster
            if self.rng.random() < 0.09 and (until >= 1 or s.user_id != roster[0].user_id)
        }
        late = {s.user_id for s in roster if s.user_id not in absent and self.rng.random() < 0.1}
        for student in roster:
            if student.user_id in absent:
                continue
            self.at(start + minute * (8 if student.user_id in late else 1))
            seats[student.user_id].record_presence(session, PresenceKind.JOIN, by=student)
            self.writer.save(seats[student.user_id])
        self.at(start + minute * 10)
        self._mark(tutor, session, roster, seats, absent, late)
        present = [s for s in roster if s.user_id not in absent]
        work: dict[UUID, tuple[UUID, Exercise]] = {}
        for student in present:
            self.at(start + minute * 12)
            exercise = self.rng.choice(self.exercises[self.course_of[student.user_id]])
            seat = seats[student.user_id]
            work_id = seat.assign_exercise(session, exercise, by=tutor)
            self.at(start + minute * 13)
            seat.start_exercise(session, work_id, by=student)
            self.writer.save(seat)
            work[student.user_id] = (work_id, exercise)
        for i, student in enumerate(present[:2]):
            self.at(start + minute * (15 + 12 * i))
            seat = seats[student.user_id]
            seat.switch_teaching_mode(session, TeachingMode.TEACH, by=tutor)
            self.at(start + minute * (25 + 12 * i))
            seat.switch_teaching_mode(session, TeachingMode.OBSERVE, by=tutor)
            self.writer.save(seat)
        for i, student in enumerate(present):
            if self.rng.random() >= 0.5:
                continue
            self._help(tutor, session, seats[student.user_id], student, start + minute * (20 + i))
        if until < 1:
            return
        for student in present:
            seat, (work_id, exercise) = seats[student.user_id], work[student.user_id]
            self.at(start + minute * 35)
            seat.report_progress(session, work_id, 50, by=student)
            self.at(start + minute * 50)
            answers = dict(self.keys[exercise.id])
            if self.rng.random() < 0.3:
                answers["q0"] = "0"
            seat.submit_exercise(session, work_id, exercise, answers, by=student)
            if seat.work[work_id].status is WorkStatus.SUBMITTED:
                self.at(start + minute * 55)
                seat.grade_exercise(
                    work_id, by=tutor, score=float(self.rng.randint(4, 8)), feedback="Good work"
                )
            self.at(start + minute * 58)
            seat.record_presence(session, PresenceKind.LEAVE, by=student)
            self.writer.save(seat)
        self.at(start + minute * 60)
        session.end(by=tutor)
        for student in sorted(roster, key=lambda s: s.user_id):
            seats[student.user_id].close_open_help_request(
                HelpRequestCloseReason.SESSION_ENDED, by=tutor
            )
        self.writer.save(session, *seats.values())
        self._after(tutor, session, present)

    def _mark(
        self,
        tutor: Actor,
        session: Session,
        roster: list[Actor],
        seats: dict[UUID, Seat],
        absent: set[UUID],
        late: set[UUID],
    ) -> None:
        """Attendance as :func:`services.command.handlers.seats.mark_attendance` keeps it."""
        changed: list[Aggregate] = []
        for student in roster:
            sid = student.user_id
            status = (
                AttendanceStatus.ABSENT
                if sid in absent
                else AttendanceStatus.LATE
                if sid in late
                else AttendanceStatus.PRESENT
            )
            change = seats[sid].mark_attendance(session, status, by=tutor)
            changed.append(seats[sid])
            if change is not None and change.opens_catch_up is not None:
                catch_up = CatchUp.assign_for_absence(change.opens_catch_up, session, sid, by=tutor)
                changed.append(catch_up)
                self.catch_ups += 1
                self._follow_catch_up(catch_up, student)
            record = self.records.get(sid)
            if record is None:
                record = self.records[sid] = AttendanceRecord.of(sid, self.centre_id)
            record.keep(session, status, by=tutor)
            changed.append(record)
        self.writer.save(*changed)

    def _follow_catch_up(self, catch_up: CatchUp, student: Actor) -> None:
        """Most catch-ups are done within the week; some run overdue, then are done late or
        given up."""
        roll = self.rng.random()
        due = catch_up.due_at

        def finish() -> None:
            catch_up.start(by=student)
            self.at(self.clock.at + timedelta(minutes=40))
            catch_up.complete(by=student)
            self.writer.save(catch_up)

        if roll < 0.75:
            done = due - timedelta(days=self.rng.randint(1, 5), hours=self.rng.randint(0, 6))
            self.later(done, finish)
        else:

            def overdue() -> None:
                catch_up.become_overdue(by=self.system, due_at=due)
                self.writer.save(catch_up)
                late = self.clock.at + timedelta(days=self.rng.randint(2, 12), hours=3)
                self.later(late, finish if self.rng.random() < 0.85 else give_up)

            def give_up() -> None:
                catch_up.cancel(by=self.supervisor, reason="made up in class instead")
                self.writer.save(catch_up)

            self.later(due + timedelta(minutes=5), overdue)

    def _help(
        self, tutor: Actor, session: Session, seat: Seat, student: Actor, raised: datetime
    ) -> None:
        priority = self.rng.choice(list(HelpPriority))
        self.at(raised)
        request_id = seat.raise_help_request(
            session, priority, by=student, sla=SLA[priority], message="I am stuck on this one"
        )
        self.help_requests += 1
        if raised > self.now - timedelta(minutes=15):
            # Still open in the session LIVE now.
            self.writer.save(seat)
            return
        roll = self.rng.random()
        if roll < 0.08:
            self.at(raised + timedelta(minutes=1))
            seat.cancel_help_request(request_id, by=student)
        elif roll < 0.92:
            self.at(raised + timedelta(minutes=1))
            seat.acknowledge_help_request(request_id, by=tutor)
            self.at(raised + timedelta(minutes=2))
            seat.start_helping(request_id, by=tutor)
            self.at(raised + timedelta(minutes=self.rng.randint(3, 9)))
            seat.resolve_help_request(request_id, by=tutor, response="Worked through it together")
        self.writer.save(seat)

    def _after(self, tutor: Actor, session: Session, present: list[Actor]) -> None:
        """Notes and homework after the session."""
        end = session.ends_at
        for student in present:
            sid = student.user_id
            if self.rng.random() < 0.15:
                self.at(end + timedelta(minutes=5))
                self.writer.save(
                    TutorNote.write(
                        self.id("note"),
                        sid,
                        by=tutor,
                        content="Steady progress; keep practising times tables.",
                        visibility=self.rng.choice(list(NoteVisibility)),
                        session_id=session.id,
                    )
                )
            if self.rng.random() < 0.2:
                self._homework(tutor, student, session, end + timedelta(minutes=10))
            if self.rng.random() < 0.1:
                self.lesson_of[sid] += 1

    def _homework(self, tutor: Actor, student: Actor, session: Session, at: datetime) -> None:
        self.at(at)
        exercises = self.rng.sample(self.exercises[self.course_of[student.user_id]], 2)
        due = at + timedelta(days=7)
        homework = Homework.assign(
            self.id("homework"),
            self.centre_id,
            student.user_id,
            by=tutor,
            teacher_id=tutor.user_id,
            title="Practice at home",
            exercises=exercises,
            due_at=due,
            session_id=session.id,
        )
        self.writer.save(homework)
        if self.rng.random() < 0.15:
            return

        def hand_in() -> None:
            homework.start(by=student)
            self.at(self.clock.at + timedelta(minutes=30))
            answers = {e.id: {f"q{q}": "1" for q in range(4)} for e in exercises}
            homework.submit({e.id: e for e in exercises}, answers, by=student)
            self.writer.save(homework)
            self.later(self.clock.at + timedelta(days=1), mark)

        def mark() -> None:
            homework.grade(by=tutor, score=float(self.rng.randint(6, 16)), feedback="Well done")
            self.writer.save(homework)

        self.later(at + timedelta(days=self.rng.randint(1, 9), hours=2), hand_in)

    # --- the year ----------------------------------------------------------------------------

    def roster_for(self, tutor: Actor) -> list[Actor]:
        return self.rng.sample(self.class_of(tutor), self.rng.randint(*STUDENTS_PER_SESSION))

    def history(self, budget: int) -> None:
        """Past days' sessions until about ``budget`` events are written."""
        first = (self.now - timedelta(days=HISTORY_DAYS)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        per_session = float(EVENTS_PER_SESSION)
        for day in range(HISTORY_DAYS):
            midnight = first + timedelta(days=day)
            self.run_pending(midnight)
            left = budget - self.writer.written
            if left <= 0:
                break
            wanted = math.ceil(left / (per_session * (HISTORY_DAYS - day)))
            slots = [(hour, tutor) for hour in SLOTS for tutor in self.tutors]
            wanted = min(wanted, len(slots))
            before, written = self.sessions, self.writer.written
            for hour, tutor in sorted(self.rng.sample(slots, wanted), key=lambda s: s[0]):
                roster = self.roster_for(tutor)
                session = self.schedule(tutor, midnight + timedelta(hours=hour), roster)
                self.run(tutor, session, roster, until=1)
                self.run_pending(session.ends_at)
            if self.sessions > before:
                done = self.sessions - before
                per_session = 0.8 * per_session + 0.2 * (self.writer.written - written) / done

    def today(self) -> None:
        """Each tutor: a session this morning (completed), one LIVE now, one later today."""
        now = self.now
        self.run_pending(now - timedelta(hours=3))
        for tutor in self.tutors:
            roster = self.roster_for(tutor)
            morning = self.schedule(tutor, now - timedelta(hours=3), roster)
            self.run(tutor, morning, roster, until=1)
        self.run_pending(now - timedelta(minutes=30))
        for tutor in self.tutors:
            roster = self.roster_for(tutor)
            live = self.schedule(tutor, now - timedelta(minutes=30), roster)
            self.run(tutor, live, roster, until=0.5)
            if self.live is None:
                self.live = (tutor, live)
                self.live_student = roster[0]
        for tutor in self.tutors:
            roster = self.roster_for(tutor)
            self.schedule(tutor, now + timedelta(hours=2), roster)
        self.at(now)
        self.writer.flush()


def seed_year(
    centres: TutoringCentres,
    *,
    events: int = 1_000_000,
    tutors: int = 50,
    students: int = 1_000,
    seed: int = 0,
    centre_id: str = "year",
    now: datetime | None = None,
    batch: int = 5_000,
) -> YearOfHistory:
    """Write ``centre_id``'s year of history, about ``events`` events in all (with
    ``events=0``, only its people, catalogue and today's sessions). ``now``: the end of the
    history (the wall clock by default; give it for the same times as well as the same ids).
    While it runs, the domain reads the history's clock instead of the wall clock."""
    if tutors < 1 or students < tutors * STUDENTS_PER_SESSION[1]:
        raise ValueError(f"need a tutor and at least {STUDENTS_PER_SESSION[1]} students each")
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    year = _Year(
        centres, centre_id, tutors=tutors, students=students, seed=seed, now=end, batch=batch
    )
    started = time.perf_counter()
    with _domain_clock(year.clock):
        year.register()
        year.history(events - TODAY_EVENTS_PER_TUTOR * tutors)
        year.today()
    seconds = time.perf_counter() - started
    assert year.live is not None and year.live_student is not None
    tutor, live = year.live
    return YearOfHistory(
        centre_id=centre_id,
        events=year.writer.count,
        sessions=year.sessions,
        catch_ups=year.catch_ups,
        help_requests=year.help_requests,
        tutors=tutors,
        students=students,
        head=centres.position,
        seconds=seconds,
        admin=year.admin,
        supervisor=year.supervisor,
        tutor=tutor,
        live_session_id=live.id,
        student=year.live_student,
        student_ids=tuple(s.user_id for s in year.students),
        tutor_ids=tuple(t.user_id for t in year.tutors),
    )
