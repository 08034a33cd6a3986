"""The demo centre, seeded through the same commands a client would send.

Two centres (one left empty, for trying tenant isolation), the seven roles, two tutors, eight
students on their own courses and lessons, yesterday's and last week's sessions with mixed
attendance (so catch-ups exist), today's sessions in the centre's time zone (one of them LIVE
with help requests waiting, one overlapping another of the same tutor) and tomorrow's, and a
few academic profiles with working levels and content overrides.

``python -m services.command.seed`` seeds an empty store and leaves a non-empty one alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog

from services.command.application import TutoringCentres
from services.command.commands.academic import (
    AssessSubject,
    AssignContent,
    ChangeWorkingLevel,
    WithdrawContentAssignment,
)
from services.command.commands.centres import RegisterCentre, RegisterPerson
from services.command.commands.exercises import (
    AssignExercise,
    PublishExercise,
    ReportExerciseProgress,
    StartExercise,
    SubmitExercise,
)
from services.command.commands.help_requests import RaiseHelpRequest
from services.command.commands.homework import AssignHomework, StartHomework, SubmitHomework
from services.command.commands.seats import AttendanceRecord, MarkAttendance
from services.command.commands.sessions import (
    EndSession,
    EnrolStudent,
    ScheduleSession,
    StartSession,
)
from services.command.privacy import PersonalData
from shared.events import (
    AttendanceStatus,
    Difficulty,
    ExerciseType,
    HelpPriority,
    LevelChangeType,
    Question,
    SessionMode,
)
from shared.tenancy import Actor
from shared.tenancy.demo import DEMO_CENTRE, DEMO_PEOPLE, EMPTY_CENTRE, demo_person

log = structlog.get_logger(__name__)

TIME_ZONE = "Australia/Sydney"
P, L, A, E = (
    AttendanceStatus.PRESENT,
    AttendanceStatus.LATE,
    AttendanceStatus.ABSENT,
    AttendanceStatus.EXCUSED,
)


def actor(handle: str) -> Actor:
    person = demo_person(handle)
    return Actor(user_id=person.id, role=person.role, centre_id=DEMO_CENTRE)


LIVE_SESSION = "Intro to Programming - Live Q&A"
"""The demo's session that is LIVE."""


@dataclass(frozen=True)
class DemoSession:
    title: str
    tutor: str
    day: int
    start: time
    minutes: int
    mode: SessionMode
    students: dict[str, tuple[str, str]]
    """Each student's own (course, lesson) in this session."""
    location: str | None = None
    beside_live: tuple[timedelta, int] | None = None
    """When the LIVE session starts now (``live_since``): this session's start after it and its
    minutes, instead of ``start`` and ``minutes``; so the live tutor's day keeps its shape, and
    leaves the hour from an hour after the seed free for the README's tour, at any hour."""


def _sessions() -> list[DemoSession]:
    online, physical, hybrid = SessionMode.ONLINE, SessionMode.PHYSICAL, SessionMode.HYBRID
    return [
        DemoSession(
            "Getting Started with Programming",
            "john",
            -8,  # its catch-up (due a week after) is overdue whatever the time of day
            time(10),
            60,
            online,
            {
                "jane": ("intro-programming", "variables"),
                "alex": ("intro-programming", "hello-world"),
                "michael": ("intro-programming", "hello-world"),
            },
        ),
        DemoSession(
            "Algebraic Expressions",
            "maria",
            -6,
            time(16),
            60,
            physical,
            {
                "jane": ("algebra-fundamentals", "expressions"),
                "michael": ("algebra-fundamentals", "like-terms"),
            },
            "Room 104",
        ),
        DemoSession(
            "HTML Fundamentals",
            "john",
            -1,
            time(14),
            90,
            physical,
            {
                "jane": ("web-dev-basics", "semantic-html"),
                "alex": ("web-dev-basics", "tags"),
                "sophia": ("web-dev-basics", "tags"),
            },
            "Room 101",
        ),
        DemoSession(
            LIVE_SESSION,
            "john",
            0,
            time(10),
            60,
            online,
            {
                "jane": ("intro-programming", "loops"),
                "alex": ("intro-programming", "conditionals"),
                "michael": ("intro-programming", "variables"),
            },
        ),
        DemoSession(
            "OVERLAP: Programming Workshop",
            "john",
            0,
            time(10, 30),
            90,
            physical,
            {
                "liam": ("intro-programming", "variables"),
                "aisha": ("intro-programming", "hello-world"),
            },
            "Room 102",
            beside_live=(timedelta(minutes=30), 30),
        ),
        DemoSession(
            "Multi-Student Video Session",
            "maria",
            0,
            time(13),
            60,
            online,
            {
                "noah": ("algebra-fundamentals", "fractions"),
                "priya": ("algebra-fundamentals", "ratios"),
                "liam": ("algebra-fundamentals", "negative-numbers"),
                "aisha": ("advanced-maths", "quadratics"),
                "sophia": ("algebra-fundamentals", "fractions"),
            },
        ),
        DemoSession(
            "HTML Basics Workshop",
            "john",
            0,
            time(14),
            90,
            physical,
            {
                "jane": ("web-dev-basics", "forms"),
                "alex": ("web-dev-basics", "links"),
                "sophia": ("web-dev-basics", "tags"),
            },
            "Room 101",
            beside_live=(timedelta(hours=4), 90),
        ),
        DemoSession(
            "Algebra Study Group",
            "maria",
            0,
            time(16),
            60,
            hybrid,
            {
                "jane": ("algebra-fundamentals", "equations"),
                "michael": ("algebra-fundamentals", "like-terms"),
            },
            "Room 104",
        ),
        DemoSession(
            "Variables Deep Dive",
            "john",
            1,
            time(10),
            90,
            online,
            {"jane": ("intro-programming", "scope"), "alex": ("intro-programming", "variables")},
        ),
        DemoSession(
            "CSS Styling",
            "john",
            1,
            time(15),
            90,
            physical,
            {
                "jane": ("web-dev-basics", "css-selectors"),
                "alex": ("web-dev-basics", "css-basics"),
                "sophia": ("web-dev-basics", "css-basics"),
            },
            "Room 205",
        ),
    ]


ATTENDANCE: dict[str, list[tuple[str, AttendanceStatus, str | None]]] = {
    "Getting Started with Programming": [
        ("jane", P, None),
        ("alex", L, "15 min late"),
        ("michael", A, None),
    ],
    "Algebraic Expressions": [("jane", P, None), ("michael", E, "Family event, notified ahead")],
    "HTML Fundamentals": [("jane", P, None), ("alex", P, None), ("sophia", A, "Sick")],
}


def seed(
    centres: TutoringCentres, *, today: date | None = None, live_since: datetime | None = None
) -> dict[str, UUID]:
    """Seed the demo; returns the ids of the sessions by title. ``live_since``: when the LIVE
    session started (by default at its planned time today; ``python -m
    services.command.seed`` starts it ten minutes before it seeds, so that the scheduler does not
    complete it as overdue whatever the time of day)."""
    zone = ZoneInfo(TIME_ZONE)
    today = today or datetime.now(zone).date()
    admin = actor("admin")
    centres.handle(
        admin, RegisterCentre(centre_id=DEMO_CENTRE, name="Main Campus", time_zone=TIME_ZONE)
    )
    centres.handle(
        admin.acting_in(EMPTY_CENTRE),
        RegisterCentre(centre_id=EMPTY_CENTRE, name="Online Campus", time_zone="UTC"),
    )
    for person in DEMO_PEOPLE:
        guardian = demo_person(person.guardian).id if person.guardian else None
        centres.handle(
            admin,
            RegisterPerson(
                name=person.name, email=person.email, role=person.role, guardian_id=guardian
            ),
        )

    sessions: dict[str, UUID] = {}
    for plan in _sessions():
        tutor = actor(plan.tutor)
        starts = datetime.combine(today + timedelta(days=plan.day), plan.start, zone)
        minutes = plan.minutes
        if plan.title == LIVE_SESSION and live_since is not None:
            starts = live_since
        elif plan.beside_live is not None and live_since is not None:
            starts, minutes = live_since + plan.beside_live[0], plan.beside_live[1]
        result = centres.handle(
            tutor,
            ScheduleSession(
                title=plan.title,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=minutes),
                mode=plan.mode,
                time_zone=TIME_ZONE,
                location=plan.location,
                meeting_link=(
                    f"https://meet.example.org/{plan.tutor}-{len(sessions) + 1}"
                    if plan.mode is not SessionMode.PHYSICAL
                    else None
                ),
            ),
        )
        session_id = UUID(result.body["sessionId"])
        sessions[plan.title] = session_id
        for warning in result.body["warnings"]:
            log.info("seed.overlap", session=plan.title, overlaps=warning["title"])
        for handle, (course, lesson) in plan.students.items():
            centres.handle(
                tutor,
                EnrolStudent(
                    session_id=session_id,
                    student_id=demo_person(handle).id,
                    course_id=course,
                    lesson_id=lesson,
                ),
            )
        if plan.day < 0:
            centres.handle(tutor, StartSession(session_id=session_id))
            centres.handle(tutor, EndSession(session_id=session_id))
            centres.handle(
                tutor,
                MarkAttendance(
                    session_id=session_id,
                    records=[
                        AttendanceRecord(student_id=demo_person(h).id, status=status, notes=notes)
                        for h, status, notes in ATTENDANCE[plan.title]
                    ],
                ),
            )

    live = sessions[LIVE_SESSION]
    _seed_academic_profiles(centres, live)
    john = actor("john")
    centres.handle(john, StartSession(session_id=live))
    centres.handle(
        john,
        MarkAttendance(
            session_id=live,
            records=[
                AttendanceRecord(student_id=demo_person("jane").id, status=P),
                AttendanceRecord(student_id=demo_person("alex").id, status=P),
                AttendanceRecord(student_id=demo_person("michael").id, status=L, notes="Bus delay"),
            ],
        ),
    )
    _seed_work(centres, live, sessions["HTML Fundamentals"])
    # Last, so that tests can replay the demo without them and raise them live.
    centres.handle(
        actor("alex"),
        RaiseHelpRequest(
            session_id=live,
            priority=HelpPriority.URGENT,
            exercise_id="conditionals-3",
            message="My if/else never runs",
        ),
    )
    centres.handle(
        actor("jane"),
        RaiseHelpRequest(
            session_id=live, priority=HelpPriority.HIGH, message="Can we go over nested loops?"
        ),
    )
    return sessions


def _seed_work(centres: TutoringCentres, live: UUID, yesterday: UUID) -> None:
    """Exercises in the live session (one marked from its key, one waiting for John) and
    homework handed in for John to grade."""
    john = actor("john")
    quiz = UUID(
        centres.handle(
            john,
            PublishExercise(
                title="Loops check",
                course_id="intro-programming",
                exercise_type=ExerciseType.MULTIPLE_CHOICE,
                difficulty=Difficulty.EASY,
                questions=[
                    Question(
                        question_id="q1",
                        prompt="How often does `for i in range(3)` run?",
                        options=("2", "3", "4"),
                        accepted_answers=("3",),
                    ),
                    Question(
                        question_id="q2",
                        prompt="Which loop runs while a condition holds?",
                        points=2,
                        options=("for", "while"),
                        accepted_answers=("while",),
                    ),
                ],
            ),
        ).body["exerciseId"]
    )
    explain = UUID(
        centres.handle(
            john,
            PublishExercise(
                title="Explain your loop",
                course_id="intro-programming",
                exercise_type=ExerciseType.SHORT_ANSWER,
                difficulty=Difficulty.MEDIUM,
                questions=[
                    Question(
                        question_id="q1",
                        prompt="In two sentences, what does your loop do?",
                        points=5,
                    )
                ],
            ),
        ).body["exerciseId"]
    )
    page = UUID(
        centres.handle(
            john,
            PublishExercise(
                title="Semantic page",
                course_id="web-dev-basics",
                exercise_type=ExerciseType.LONG_ANSWER,
                difficulty=Difficulty.HARD,
                questions=[
                    Question(
                        question_id="q1",
                        prompt="Mark up a page with header, nav, main and footer",
                        points=10,
                    )
                ],
            ),
        ).body["exerciseId"]
    )

    jane, alex, michael = (demo_person(h).id for h in ("jane", "alex", "michael"))
    work = {
        UUID(w["studentId"]): UUID(w["workId"])
        for w in centres.handle(john, AssignExercise(session_id=live, exercise_id=quiz)).body[
            "work"
        ]
    }
    centres.handle(actor("jane"), StartExercise(session_id=live, work_id=work[jane]))
    centres.handle(
        actor("jane"), ReportExerciseProgress(session_id=live, work_id=work[jane], percent=40)
    )
    centres.handle(actor("michael"), StartExercise(session_id=live, work_id=work[michael]))
    centres.handle(
        actor("michael"),
        SubmitExercise(session_id=live, work_id=work[michael], answers={"q1": "3", "q2": "while"}),
    )
    (alex_work,) = centres.handle(
        john, AssignExercise(session_id=live, exercise_id=explain, student_ids=[alex])
    ).body["work"]
    alex_work_id = UUID(alex_work["workId"])
    centres.handle(actor("alex"), StartExercise(session_id=live, work_id=alex_work_id))
    centres.handle(
        actor("alex"),
        SubmitExercise(
            session_id=live,
            work_id=alex_work_id,
            answers={"q1": "It counts to ten. It prints each number."},
        ),
    )

    due = datetime.now(ZoneInfo(TIME_ZONE)) + timedelta(days=3)
    homework = UUID(
        centres.handle(
            john,
            AssignHomework(
                student_id=jane,
                title="A page of your own",
                exercise_ids=[page],
                due_at=due,
                session_id=yesterday,
            ),
        ).body["homeworkId"]
    )
    centres.handle(actor("jane"), StartHomework(homework_id=homework))
    centres.handle(
        actor("jane"),
        SubmitHomework(
            homework_id=homework,
            answers={
                page: {"q1": "<header>…</header><nav>…</nav><main>…</main><footer>…</footer>"}
            },
        ),
    )
    centres.handle(
        john,
        AssignHomework(
            student_id=alex,
            title="Loops practice",
            exercise_ids=[quiz, explain],
            due_at=due,
            session_id=live,
        ),
    )


def _seed_academic_profiles(centres: TutoringCentres, live: UUID) -> None:
    """Levels that differ from the school grade, a level change, and content overrides (one
    superseded, one withdrawn)."""
    david, maria, john = actor("david"), actor("maria"), actor("john")
    sophia, michael, alex, jane = (demo_person(h).id for h in ("sophia", "michael", "alex", "jane"))
    algebra = "algebra-fundamentals"
    centres.handle(
        david,
        AssessSubject(
            student_id=sophia,
            course_id=algebra,
            school_grade=5,
            working_level=3,
            notes="Placement test: number sense is shaky",
        ),
    )
    centres.handle(
        david,
        ChangeWorkingLevel(
            student_id=sophia,
            course_id=algebra,
            level=4,
            change_type=LevelChangeType.DIAGNOSTIC_TEST,
            reason="Diagnostic retest: fractions and ratios now secure",
        ),
    )
    centres.handle(
        maria, AssessSubject(student_id=michael, course_id=algebra, school_grade=7, working_level=5)
    )
    centres.handle(
        maria,
        ChangeWorkingLevel(
            student_id=michael,
            course_id=algebra,
            level=6,
            change_type=LevelChangeType.LEVEL_ADVANCEMENT,
            reason="Mastered like terms in two sessions",
        ),
    )
    centres.handle(
        john,
        AssessSubject(
            student_id=alex, course_id="intro-programming", school_grade=6, working_level=6
        ),
    )
    centres.handle(
        john,
        AssignContent(
            student_id=alex,
            course_id="intro-programming",
            lesson_id="conditionals",
            exercise_id="conditionals-3",
            session_id=live,
            reason="Revisit if/else before moving on to loops",
        ),
    )
    centres.handle(
        john,
        AssignContent(
            student_id=alex,
            course_id="intro-programming",
            lesson_id="conditionals",
            exercise_id="conditionals-4",
            session_id=live,
            reason="conditionals-3 done in class; one more before loops",
        ),
    )
    withdrawn = centres.handle(
        john,
        AssignContent(
            student_id=jane,
            course_id="web-dev-basics",
            lesson_id="forms",
            reason="Practise form validation before the workshop",
        ),
    )
    centres.handle(
        john,
        WithdrawContentAssignment(
            student_id=jane,
            assignment_id=UUID(withdrawn.body["assignmentId"]),
            reason="Covered in the workshop",
        ),
    )


def main() -> None:
    from services.command.settings import SeedSettings
    from services.settings import start

    settings = start(SeedSettings, "seed")
    privacy = PersonalData.open(settings.event_store, settings.privacy, dev_mode=settings.dev_mode)
    centres = TutoringCentres(settings.event_store, privacy=privacy)  # seals as the API does
    try:
        if centres.position:
            log.info(
                "seed.skipped",
                reason="the event store already holds events",
                position=centres.position,
            )
            return
        sessions = seed(centres, live_since=datetime.now(UTC) - timedelta(minutes=10))
        log.info("seed.done", sessions=len(sessions), position=centres.position)
    finally:
        centres.close()


if __name__ == "__main__":
    main()
